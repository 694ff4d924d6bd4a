"""The "Import your Spotify history" page: upload, background run, progress, summary; and
the emulator's synthetic data export it is tried with in demo mode."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from emulator.data_export import listening
from helpers import csrf_token, query, user_id, wait_until


def download_export(emulator, listener="ava", **params) -> bytes:
    answer = requests.get(f"{emulator.base_url}/_emulator/data-export/{listener}.zip", params=params, timeout=60)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/zip"
    return answer.content


def upload(client, data: bytes, name="my_spotify_data.zip", import_id=None):
    token = csrf_token(client, "/import")
    url = "/import/files" + (f"?import={import_id}" if import_id else "")
    return client.post(
        url,
        data=data,
        headers={"X-CSRFToken": token, "X-File-Name": name, "Accept": "application/json"},
        content_type="application/octet-stream",
    )


def start(client, import_id: int):
    token = csrf_token(client, "/import")
    return client.post(f"/import/{import_id}/start", headers={"X-CSRFToken": token, "Accept": "application/json"})


def wait_for_import(client, import_id: int, timeout: float = 60) -> dict:
    def finished():
        status = client.get(f"/api/import/{import_id}").get_json()
        return status if status["status"] in ("succeeded", "failed") else None

    return wait_until(finished, f"import {import_id} to finish", timeout, interval=0.05)


def import_bytes(client, data: bytes, name="my_spotify_data.zip") -> dict:
    answer = upload(client, data, name)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    import_id = answer.get_json()["import_id"]
    started = start(client, import_id)
    assert started.status_code == 202, started.get_data(as_text=True)
    return wait_for_import(client, import_id)


def test_a_demo_listener_imports_its_synthetic_export_and_reads_the_summary(logged_in, spotify_app, emulator, db):
    client = logged_in("ava")
    page = client.get("/import").get_data(as_text=True)
    assert 'id="import-files"' in page and 'id="demo-export-link"' in page and "/_emulator/privacy?user=ava" in page

    export = download_export(emulator, days=30)
    status = import_bytes(client, export)
    assert status["status"] == "succeeded", status
    summary = status["summary"]
    now = emulator.state.now()
    window = listening("ava", (now - timedelta(days=30)).date(), now.date())
    distinct = {at.replace(microsecond=0) for _, at in window if at <= now}
    assert len(distinct) > 100  # the listener played in those days
    ava = user_id(db, "ava")
    stored = query(db, "SELECT count(*) FROM plays WHERE user_id = %s AND track_id IS NOT NULL", (ava,))[0][0]
    assert stored == len(distinct)  # every play of the export, the sync's captured ones included once
    assert summary["completed"] > 0  # the plays the first sync captured, completed with the export's facts
    assert summary["not_plays"]["podcast"] > 0 and summary["not_plays"]["zero_ms"] > 0
    assert summary["rows"] > summary["new_plays"]

    shown = client.get(f"/import/{status['id']}").get_data(as_text=True)
    assert 'id="import-summary"' in shown and f"{summary['new_plays']:,} new plays" in shown

    again = import_bytes(client, export)  # the same export again
    assert again["status"] == "succeeded"
    assert again["message"] == "Nothing new: all 2 history files were imported before."
    assert query(db, "SELECT count(*) FROM plays WHERE user_id = %s AND track_id IS NOT NULL", (ava,))[0][0] == stored


def test_an_unreadable_upload_fails_with_a_message_naming_it(logged_in, db):
    client = logged_in("bruno")
    status = import_bytes(client, b"this is not a zip", name="holiday.jpg")
    assert status["status"] == "failed"
    assert status["message"].startswith("holiday.jpg: not a zip or JSON file")
    page = client.get(f"/import/{status['id']}").get_data(as_text=True)
    assert 'id="import-error"' in page and "holiday.jpg: not a zip or JSON file" in page
    assert query(db, "SELECT count(*) FROM plays WHERE source <> 'polling'") == [(0,)]


def test_uploads_are_bounded_and_private(logged_in, spotify_app, emulator):
    spotify_app.config["HISTORY_UPLOAD_MAX_BYTES"] = 1024 * 1024
    client = logged_in("chen")
    too_big = upload(client, b"[" + b" " * (1024 * 1024 + 10) + b"]", name="Streaming_History_Audio_2020_0.json")
    assert too_big.status_code == 413
    assert "larger than the 1,048,576 bytes" in too_big.get_json()["error"]["message"]

    mine = upload(client, b"[]", name="Streaming_History_Audio_2020_0.json").get_json()["import_id"]
    other = spotify_app.test_client()
    from helpers import sign_in_and_sync

    sign_in_and_sync(other, emulator, "dana")
    assert other.get(f"/api/import/{mine}").status_code == 404
    assert upload(other, b"[]", import_id=mine).status_code == 404
    assert other.get(f"/import/{mine}").status_code == 404


def test_the_form_works_without_script_and_a_second_import_waits(logged_in, emulator):
    client = logged_in("emeka")
    token = csrf_token(client, "/import")
    data = download_export(emulator, "emeka", days=7)
    answer = client.post(
        "/import",
        data={"csrf_token": token, "files": (io.BytesIO(data), "my_spotify_data.zip")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303
    import_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    assert wait_for_import(client, import_id)["status"] == "succeeded"
    assert client.post("/import", data={"csrf_token": token}, content_type="multipart/form-data").status_code == 400


def test_the_import_page_is_linked_from_the_dashboard_and_settings(logged_in, emulator):
    client = logged_in("ava")
    assert 'id="import-history-link" href="/import"' in client.get("/dashboard").get_data(as_text=True)
    assert 'id="import-history-link" href="/import"' in client.get("/settings").get_data(as_text=True)
    consent = requests.get(emulator.base_url + "/_emulator/privacy", timeout=5).text
    assert 'id="request-extended-ava"' in consent and "Request your data" in consent


@pytest.mark.parametrize("generation", ["new", "old"])
def test_the_emulator_export_carries_private_fields_the_import_drops(emulator, generation):
    import json
    import zipfile

    data = download_export(emulator, "dana", days=3, generation=generation)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        audio = [n for n in names if n.endswith(".json") and ("Audio" in n or "endsong" in n)]
        rows = json.loads(archive.read(audio[0]))
    assert rows and all("ts" in r and "ms_played" in r for r in rows)
    private = {"ip_addr"} if generation == "new" else {"ip_addr_decrypted", "user_agent_decrypted", "username"}
    assert private <= rows[0].keys()


def test_an_import_whose_worker_died_is_reported_as_interrupted(logged_in, db):
    client = logged_in("ava")
    import_id = upload(client, b"[]", name="Streaming_History_Audio_2020_0.json").get_json()["import_id"]
    query(
        db,
        "UPDATE history_imports SET status = 'running', started_at = now(), worker = 'elsewhere:1',"
        " heartbeat_at = now() - interval '5 minutes' WHERE id = %s",
        (import_id,),
    )
    status = client.get(f"/api/import/{import_id}").get_json()
    assert status["status"] == "failed" and "interrupted" in status["message"]
    again = import_bytes(client, b"[]", name="Streaming_History_Audio_2020_0.json")  # not blocked by the dead one
    assert again["status"] == "succeeded"


def stored_upload_files(db, import_id: int) -> list:
    return query(
        db,
        "SELECT f.name, f.complete, count(c.chunk_no) FROM history_upload_files f"
        " LEFT JOIN history_upload_chunks c ON c.file_id = f.id WHERE f.import_id = %s GROUP BY f.id ORDER BY f.id",
        (import_id,),
    )


def test_an_abandoned_upload_is_removed_when_the_next_import_starts(logged_in, db):
    client = logged_in("bruno")
    abandoned = upload(client, b"[]", name="Streaming_History_Audio_2020_0.json").get_json()["import_id"]
    assert stored_upload_files(db, abandoned) == [("Streaming_History_Audio_2020_0.json", True, 1)]
    query(db, "UPDATE history_imports SET heartbeat_at = now() - interval '2 days' WHERE id = %s", (abandoned,))
    upload(client, b"[]", name="Streaming_History_Audio_2020_0.json")
    assert stored_upload_files(db, abandoned) == []
    assert query(db, "SELECT status FROM history_imports WHERE id = %s", (abandoned,)) == [("failed",)]


def stored_zip(rows: list) -> bytes:
    """An export zip whose entry is stored, not deflated: several chunks of upload, and an
    entry that crosses their boundaries."""
    import json
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2021_0.json", json.dumps(rows))
    return buffer.getvalue()


def catalogue_rows(count: int) -> list:
    """Extended rows of real catalogue tracks the app has not seen yet (enrichment fetches them)."""
    from emulator.catalogue import get_catalogue
    from history_files import START, extended_row

    tracks = sorted(get_catalogue().track_list, key=lambda t: t.id)[-count:]
    padding = {"x_unknown_field": "x" * 40_000}  # a few MB of upload for a few dozen rows
    return [
        extended_row(START + timedelta(minutes=4 * i), i, spotify_track_uri=f"spotify:track:{t.id}", **padding)
        for i, t in enumerate(tracks)
    ]


def test_the_import_is_a_job_its_uploads_wait_in_the_database_and_enrichment_follows(logged_in, spotify_app, db):
    from history import uploads

    spotify_app.config["HISTORY_ENRICH_BATCH"] = 25  # several enrichment jobs, one after the other
    client = logged_in("dana")
    dana = user_id(db, "dana")
    known = {row[0] for row in query(db, "SELECT spotify_id FROM tracks")}
    rows = [r for r in catalogue_rows(400) if r["spotify_track_uri"].rsplit(":", 1)[1] not in known][:60]
    data = stored_zip(rows)
    assert len(data) > 2 * uploads.CHUNK_BYTES
    import_id = upload(client, data).get_json()["import_id"]
    chunks = -(-len(data) // uploads.CHUNK_BYTES)
    assert stored_upload_files(db, import_id) == [("my_spotify_data.zip", True, chunks)]
    assert not (Path(spotify_app.instance_path) / "history-uploads").exists()  # nothing on this machine's disk

    assert start(client, import_id).status_code == 202
    status = wait_for_import(client, import_id)
    assert status["status"] == "succeeded", status
    assert status["summary"]["new_plays"] == len(rows) and status["summary"]["new_tracks"] == len(rows)
    job = (
        "SELECT j.task_name, j.lock, j.status::text FROM history_imports h JOIN procrastinate_jobs j ON j.id = h.job_id"
        " WHERE h.id = %s"
    )
    [(task, lock, job_status)] = wait_until(
        lambda: (rows := query(db, job, (import_id,))) and rows[0][2] == "succeeded" and rows, "the job done", 30, 0.05
    )
    assert (task, lock, job_status) == ("history.import", f"user:{dana}", "succeeded")
    assert stored_upload_files(db, import_id) == []  # gone with the import's own commit

    # the enrichment job the import queued fetches every named track, one at a time
    wait_until(
        lambda: query(db, "SELECT count(*) FROM tracks WHERE needs_enrichment") == [(0,)], "tracks enriched", 90, 0.2
    )
    ids = [r["spotify_track_uri"].rsplit(":", 1)[1] for r in rows]
    assert query(
        db, "SELECT count(*) FROM tracks WHERE spotify_id = ANY(%s) AND raw_json->'album'->>'name' IS NOT NULL", (ids,)
    ) == [(len(rows),)]
    assert query(db, "SELECT count(*) >= 3 FROM procrastinate_jobs WHERE task_name = 'history.enrich'") == [(True,)]


def test_a_worker_killed_mid_import_leaves_nothing_and_its_retry_imports_everything(db, emulator, tmp_path):
    import signal

    import psycopg2

    import database
    from app import create_app
    from helpers import log_in_as, start_worker_process
    from history_files import plays, user

    app = create_app({"TESTING": True, "DATABASE_URL": db, "SECRET_KEY": "test-secret", "DB_POOL_MIN": 0})
    client = app.test_client()
    log_in_as(client, user(db, "kim"))
    rows = plays(600)
    import_id = upload(client, stored_zip(rows)).get_json()["import_id"]
    assert start(client, import_id).status_code == 202  # queued: no worker runs yet

    # Hold the import at its very end: its transaction removes the uploads last, and this
    # share lock makes it wait there with every play written but nothing committed.
    holder = psycopg2.connect(db)
    holder.cursor().execute("SELECT 1 FROM history_upload_files WHERE import_id = %s FOR SHARE", (import_id,))
    workers = [start_worker_process(db, emulator, tmp_path, "first", CAPTURE_INTERVAL="20")]
    try:
        [(pid,)] = wait_until(
            lambda: query(
                db,
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'DELETE FROM history_upload_files%%'",
            ),
            "the import waiting at its end",
            60,
            0.1,
        )
        running = client.get(f"/api/import/{import_id}").get_json()
        assert running["status"] == "running" and running["rows_done"] == len(rows)  # live progress
        assert query(db, "SELECT count(*) FROM plays") == [(0,)]  # written, not committed
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        holder.rollback()
        wait_until(
            lambda: query(db, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == [(0,)],
            "the killed worker's session rolled back",
            30,
            0.1,
        )
        assert query(db, "SELECT count(*) FROM plays") == [(0,)]  # nothing half-imported
        workers.append(start_worker_process(db, emulator, tmp_path, "second", CAPTURE_INTERVAL="20"))
        status = wait_for_import(client, import_id, timeout=90)
    finally:
        holder.close()
        for process in workers:
            if process.poll() is None:
                process.terminate()
                process.wait(20)
        database.close_pool()
    assert status["status"] == "succeeded", status
    assert status["summary"]["new_plays"] == len(rows)
    assert query(db, "SELECT count(*), count(DISTINCT played_at) FROM plays") == [(len(rows), len(rows))]
    [(attempts,)] = query(db, "SELECT attempts FROM procrastinate_jobs WHERE task_name = 'history.import'")
    assert attempts == 2
    assert stored_upload_files(db, import_id) == []
