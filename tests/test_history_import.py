"""Importing Spotify data exports: what lands, what is dropped, dedupe, privacy, bad input."""

from __future__ import annotations

import zipfile
from datetime import timedelta

import pytest

from helpers import query
from history.archive import BadInput
from history.importer import describe
from history_files import (
    IP_NEW,
    IP_OLD,
    START,
    USER_AGENT,
    USERNAME,
    basic_row,
    extended_row,
    plays,
    podcast_row,
    run_import,
    track_uri,
    user,
    write_json,
    write_zip,
)

AUDIO = "Spotify Extended Streaming History/Streaming_History_Audio_2021_0.json"


def play_rows(db, user_id):
    return query(
        db,
        "SELECT played_at, track_id, track_name, ms_played, source FROM plays WHERE user_id = %s ORDER BY played_at",
        (user_id,),
    )


def test_an_extended_export_lands_as_plays_with_their_facts(db, tmp_path):
    listener = user(db)
    rows = [
        *plays(3),
        extended_row(START + timedelta(hours=1), 50, reason_end="fwdbtn", skipped=True, shuffle=True),
        extended_row(START + timedelta(hours=2), 51, spotify_track_uri=None, master_metadata_track_name="Home demo"),
        extended_row(START + timedelta(hours=3), 52, ms=0),  # never played
        podcast_row(START + timedelta(hours=4)),
        extended_row(
            START + timedelta(hours=5),
            53,
            audiobook_title="A Book",
            audiobook_uri="spotify:audiobook:x",
            spotify_track_uri=None,
            master_metadata_track_name=None,
        ),
    ]
    archive = write_zip(
        tmp_path / "my_spotify_data.zip",
        {
            AUDIO: rows,
            "Spotify Extended Streaming History/Streaming_History_Video_2021.json": [podcast_row(START)],
            "Spotify Extended Streaming History/ReadMeFirst_ExtendedStreamingHistory.pdf": b"%PDF-1.4",
        },
    )
    summary = run_import(db, listener, archive)

    assert summary["new_plays"] == 5
    assert summary["not_plays"] == {"zero_ms": 1, "podcast": 1, "audiobook": 1, "video": 1, "unnamed": 0}
    stored = play_rows(db, listener)
    assert [r[2] for r in stored] == ["Song 1", "Song 2", "Song 3", "Song 50", "Home demo"]
    assert stored[4][1] is None  # a local file is a play, kept by its name
    assert all(r[4] == "export" for r in stored)
    facts = query(
        db,
        "SELECT reason_end, skipped, shuffle, platform, country, album_name FROM plays WHERE track_name = 'Song 50'",
    )
    assert facts == [("fwdbtn", True, True, "Android OS 12 API 31 (Google, Pixel 6)", "SE", "Album 6")]
    assert query(
        db, "SELECT name, artist_name, needs_enrichment FROM tracks WHERE spotify_id = %s", (track_uri(1)[14:],)
    ) == [("Song 1", "Artist 1", True)]
    assert "5 new plays" in describe(summary)


def test_nothing_private_is_stored_from_either_generation_of_field_names(db, tmp_path):
    listener = user(db)
    new = write_json(tmp_path / "Streaming_History_Audio_2021_0.json", plays(5))
    old = write_json(tmp_path / "endsong_0.json", plays(5, start=START + timedelta(days=1), old_names=True))
    run_import(db, listener, new, old)

    dump = "\n".join(
        str(row)
        for table in ("plays", "tracks", "history_imports", "history_import_files", "users")
        for row in query(db, f"SELECT t::text FROM {table} t")  # noqa: S608 (fixed table names)
    )
    assert "Song 3" in dump
    for private in (IP_NEW, IP_OLD, USER_AGENT, USERNAME, "203.0.113", "198.51.100"):
        assert private not in dump


def test_reimporting_the_same_export_adds_nothing_and_says_so(db, tmp_path):
    listener = user(db)
    archive = write_zip(tmp_path / "export.zip", {AUDIO: plays(40)})
    assert run_import(db, listener, archive)["new_plays"] == 40

    again = run_import(db, listener, archive)
    assert again["new_plays"] == 0 and again["files_already_imported"] == 1
    assert describe(again) == "Nothing new: this file was imported before."

    parsed_again = run_import(db, listener, archive, force=True)  # past the fingerprint: the plays' identity
    assert parsed_again["new_plays"] == 0 and parsed_again["already_known"] == 40 and parsed_again["nothing_new"]
    assert describe(parsed_again).startswith("Nothing new, 40 already known")
    assert len(play_rows(db, listener)) == 40


def test_overlapping_exports_and_old_plus_new_format_collapse_to_one_play(db, tmp_path):
    listener = user(db)
    first = write_json(tmp_path / "Streaming_History_Audio_2021_0.json", plays(100))
    # a later export of the same account: the last 50 plays again, then 50 more
    later = write_json(
        tmp_path / "Streaming_History_Audio_2021-2022_0.json",
        plays(100, start=START + timedelta(seconds=50 * 240), first=51),
    )
    # the older format of the same period (endsong, private fields under their old names)
    old = write_json(tmp_path / "endsong_0.json", plays(100, old_names=True))
    run_import(db, listener, first)
    summary = run_import(db, listener, later, old)

    assert summary["new_plays"] == 50
    assert summary["already_known"] == 150
    assert len(play_rows(db, listener)) == 150


def test_a_play_the_capture_already_saw_is_completed_by_the_export(db, tmp_path):
    listener = user(db)
    row = extended_row(START, 7, reason_end="endplay")
    track_id = track_uri(7)[14:]
    query(db, "INSERT INTO tracks (spotify_id, name) VALUES (%s, 'Song 7')", (track_id,))
    query(db, "INSERT INTO plays (user_id, played_at, track_id) VALUES (%s, %s, %s)", (listener, START, track_id))

    summary = run_import(db, listener, write_json(tmp_path / "Streaming_History_Audio_2021_0.json", [row]))
    assert summary["new_plays"] == 0 and summary["completed"] == 1
    assert query(db, "SELECT track_id, ms_played, reason_end, source FROM plays") == [
        (track_id, 200_000, "endplay", "export")
    ]


def test_a_basic_export_is_matched_to_known_plays_by_minute_and_names(db, tmp_path):
    listener = user(db)
    extended = plays(10)  # 20:00:00, 20:04:00, ...
    run_import(db, listener, write_json(tmp_path / "Streaming_History_Audio_2021_0.json", extended))
    basic_rows = [
        *(basic_row(START + timedelta(seconds=i * 240 + 30), i + 1) for i in range(10)),  # the same plays
        basic_row(START + timedelta(days=2), 3),  # a new play of a known track
        basic_row(START + timedelta(days=2, seconds=20), 99),  # a track nobody knows, same minute
        basic_row(START + timedelta(days=2, seconds=40), 99),  # ... and once more
        {"endTime": "2021-02-30 10:00", "artistName": "A", "trackName": "B", "msPlayed": 1000},  # impossible day
    ]
    basic = write_json(tmp_path / "StreamingHistory_music_0.json", basic_rows)
    summary = run_import(db, listener, basic)

    assert summary["already_known"] == 10
    assert summary["new_plays"] == 3 and summary["linked_by_name"] == 1
    assert summary["bad"] == {"no valid end time (endTime)": 1}
    new = query(
        db,
        "SELECT played_at, track_id IS NOT NULL, track_name FROM plays "
        "WHERE source = 'export_basic' ORDER BY played_at",
    )
    day2 = (START + timedelta(days=2)).replace(second=0)
    assert [(r[0] - day2).total_seconds() for r in new] == [0, 1, 2]  # free seconds of their minute
    assert [(r[1], r[2]) for r in new] == [(True, "Song 3"), (False, "Song 99"), (False, "Song 99")]

    assert run_import(db, listener, basic, force=True)["new_plays"] == 0  # the same basic export again


def test_an_extended_export_supersedes_the_basic_plays_it_matches(db, tmp_path):
    listener = user(db)
    run_import(
        db,
        listener,
        write_json(
            tmp_path / "StreamingHistory_music_0.json",
            [basic_row(START + timedelta(seconds=i * 240), i + 1) for i in range(6)],
        ),
    )
    assert len(play_rows(db, listener)) == 6
    summary = run_import(db, listener, write_json(tmp_path / "Streaming_History_Audio_2021_0.json", plays(6)))
    assert summary["new_plays"] == 0 and summary["completed"] == 6
    assert {r[4] for r in play_rows(db, listener)} == {"export"} and len(play_rows(db, listener)) == 6


def test_bad_rows_are_counted_and_the_rest_imported(db, tmp_path):
    listener = user(db)
    rows = [
        *plays(2),
        extended_row(START, 5, ts="2021-13-45T99:00:00Z"),
        extended_row(START, 6, ts="1970-01-01T00:00:00Z"),
        extended_row(START, 7, ts="2999-01-01T00:00:00Z"),
        extended_row(START, 8, ms_played="lots"),
        "not an object",
        extended_row(START + timedelta(days=3), 9, master_metadata_track_name="Nul\x00 and\ttab\\"),
        extended_row(START + timedelta(days=4), 10, master_metadata_track_name="\\N"),  # COPY's NULL, as a name
    ]
    summary = run_import(db, listener, write_json(tmp_path / "Streaming_History_Audio_2021_0.json", rows))
    assert summary["new_plays"] == 4 and summary["bad_rows"] == 5
    assert summary["bad"] == {
        "no valid end time (ts)": 3,
        "ms_played is not a number of milliseconds": 1,
        "not a JSON object": 1,
    }
    assert query(db, "SELECT track_name FROM plays WHERE track_name LIKE %s", ("Nul%",)) == [("Nul and\ttab\\",)]
    assert query(db, "SELECT count(*) FROM plays WHERE track_name = %s", ("\\N",)) == [(1,)]


def every_kind_of_extended_row() -> list[dict]:
    """Music, spoken word, local files, duplicates and values of every odd type, all of
    them JSON objects (a file Spotify could have written)."""
    later = START + timedelta(days=2)
    return [
        *plays(5),
        plays(1)[0],  # the same play twice
        podcast_row(later),
        extended_row(
            later + timedelta(minutes=1),
            20,
            spotify_track_uri=None,
            master_metadata_track_name=None,
            audiobook_uri="spotify:audiobook:" + "c" * 22,
            audiobook_title="A Book",
        ),
        extended_row(later + timedelta(minutes=2), 21, spotify_track_uri=None),  # a local file: names only
        extended_row(later + timedelta(minutes=3), 22, ms=0),
        extended_row(later + timedelta(minutes=4), 23, ms_played=181_000.0),  # an integral float
        extended_row(later + timedelta(minutes=5), 24, ms_played=1.5),
        extended_row(later + timedelta(minutes=6), 25, ts=None),
        {k: v for k, v in extended_row(later + timedelta(minutes=7), 26).items() if k != "ms_played"},
        extended_row(later + timedelta(minutes=8), 27, ts=1614628800),
        extended_row(later + timedelta(minutes=9), 28, skipped="yes", shuffle=None, conn_country="sweden"),
        extended_row(later + timedelta(minutes=10), 29, spotify_track_uri="spotify:track:short"),
        extended_row(later + timedelta(minutes=11), 30, ts="2021-03-03T20:11:00+01:00"),
    ]


def test_a_file_decoded_whole_and_one_streamed_row_by_row_import_the_same(make_database, tmp_path, monkeypatch):
    """Each of Spotify's files is decoded whole (fast); a bigger one streams through ijson.
    Which way a file goes changes the speed, never what lands or what is reported."""
    from history import importer

    path = write_json(tmp_path / "Streaming_History_Audio_2021_0.json", every_kind_of_extended_row())
    outcomes = []
    for whole_file_bytes in (importer.WHOLE_FILE_BYTES, 0):  # decoded whole, then streamed
        monkeypatch.setattr(importer, "WHOLE_FILE_BYTES", whole_file_bytes)
        db = make_database(schema=True)  # each its own: the second would find the first's tracks known
        listener = user(db)
        summary = run_import(db, listener, path)
        stored = query(
            db,
            "SELECT played_at, track_id, track_name, artist_name, album_name, ms_played, reason_start, reason_end,"
            " skipped, shuffle, offline, platform, country FROM plays WHERE user_id = %s ORDER BY played_at",
            (listener,),
        )
        outcomes.append((describe(summary), summary["bad"], summary["not_plays"], stored))
    assert outcomes[0] == outcomes[1]
    assert "1 row that never played (0 ms)" in outcomes[0][0]  # one row, in the singular
    assert len(outcomes[0][3]) == 10 and outcomes[0][1] == {
        "no valid end time (ts)": 2,
        "ms_played is not a number of milliseconds": 2,
    }


def nothing_stored(db) -> bool:
    return query(
        db,
        "SELECT (SELECT count(*) FROM plays) + (SELECT count(*) FROM tracks)"
        " + (SELECT count(*) FROM history_import_files)",
    ) == [(0,)]


def zip_with_raw_name(path, placeholder: str, raw: bytes, content) -> None:
    """A zip whose entry name holds bytes zipfile would never write (a NUL)."""
    write_zip(path, {placeholder: content})
    data = path.read_bytes().replace(placeholder.encode(), raw)
    path.write_bytes(data)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100), "not a zip or JSON file"),
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: write_json(p, {"username": "x", "email": "y"}), "not a JSON list of plays"),
        (lambda p: write_json(p, [{"name": "My playlist", "items": []}]), "not the shape its name promises"),
        (lambda p: p.write_text('[{"ts": "2021-03-01T20:00:00Z", "ms_played": 1000,'), "not valid JSON"),
    ],
)
def test_an_unreadable_file_stops_the_import_names_the_file_and_changes_nothing(db, tmp_path, make, message):
    listener = user(db)
    good = write_json(tmp_path / "Streaming_History_Audio_2021_0.json", plays(30))
    bad = tmp_path / "Streaming_History_Audio_2021_1.json"
    make(bad)
    with pytest.raises(BadInput) as caught:
        run_import(db, listener, good, bad)
    assert "Streaming_History_Audio_2021_1.json" in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert nothing_stored(db)


def test_a_truncated_zip_is_bad_input(db, tmp_path):
    listener = user(db)
    archive = write_zip(tmp_path / "export.zip", {AUDIO: plays(200)})
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BadInput, match="export.zip: not a readable zip, perhaps a truncated download"):
        run_import(db, listener, archive)
    assert nothing_stored(db)


def test_a_zip_bomb_is_refused_before_it_is_inflated(db, tmp_path):
    listener = user(db)
    bomb = b"[" + b" " * (50 * 1024 * 1024) + b"]"  # 50 MB of blanks pack to about 50 kB
    archive = write_zip(tmp_path / "export.zip", {AUDIO: bomb})
    with pytest.raises(BadInput, match="a zip bomb"):
        run_import(db, listener, archive)
    small_cap = write_zip(tmp_path / "big.zip", {AUDIO: plays(300)})
    with pytest.raises(BadInput, match="more than the import accepts"):
        run_import(db, listener, small_cap, max_unpacked=10_000)
    assert nothing_stored(db)


def test_a_zip_is_read_entry_by_entry_whatever_its_names(db, tmp_path, monkeypatch):
    listener = user(db)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inside").mkdir()
    escape = "../" * 8 + "tmp/Streaming_History_Audio_2021_0.json"
    long_name = "Spotify Extended Streaming History/" + "x" * 300 + "/Streaming_History_Audio_2021_1.json"
    archive = write_zip(
        tmp_path / "inside" / "export.zip",
        {escape: plays(3), long_name: plays(3, start=START + timedelta(days=1), first=10)},
    )
    nul = tmp_path / "inside" / "nul.zip"
    zip_with_raw_name(
        nul,
        "Streaming_History_Audio_2021_2.jsonX.txt",
        b"Streaming_History_Audio_2021_2.json\x00.txt",
        plays(2, start=START + timedelta(days=2), first=20),
    )
    before = sorted(p.name for p in tmp_path.rglob("*"))

    summary = run_import(db, listener, archive, nul)
    assert summary["new_plays"] == 8
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted anywhere
    assert max(len(f["name"]) for f in summary["files"]) <= 120
    assert all("\x00" not in f["name"] for f in summary["files"])


def test_a_damaged_entry_names_the_file_and_changes_nothing(db, tmp_path):
    listener = user(db)
    archive = write_zip(
        tmp_path / "export.zip",
        {
            AUDIO: plays(500),
            "Spotify Extended Streaming History/Streaming_History_Audio_2021_1.json": plays(500, first=900),
        },
    )
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        second = z.infolist()[1]
    middle = second.header_offset + 100 + second.compress_size // 2
    data[middle : middle + 64] = b"\xff" * 64
    archive.write_bytes(bytes(data))
    # inflating garbage fails either in zlib, at the CRC check, or as JSON: the file is named each way
    with pytest.raises(BadInput, match="Streaming_History_Audio_2021_1.json: (the zip's data is damaged|not valid)"):
        run_import(db, listener, archive)
    assert nothing_stored(db)


# -- one play across sources: account data, extended export, capture (history_db docstring)
def capture(db, user_id: int, track_id: str, *when) -> int:
    """What a sync or capture stores from recently played (library_db.store_plays)."""
    import database
    import library_db
    from history_files import connect

    conn = connect(db)
    try:
        with database.transaction(conn) as cur:
            return library_db.store_plays(cur, user_id, [track_id] * len(when), list(when))
    finally:
        conn.close()


def catalogue_track(db, n: int, name: str, artists: list[str] | None, stored_artist: str | None = None) -> str:
    """A track as a sync stores it (its artists in raw_json), or with ``artists`` None as
    an export named it (``stored_artist`` only, not fetched yet)."""
    from psycopg2.extras import Json

    track_id = track_uri(n)[14:]
    raw = Json({"id": track_id, "name": name, "artists": [{"name": a} for a in artists]}) if artists else None
    query(
        db,
        "INSERT INTO tracks (spotify_id, name, artist_name, raw_json, needs_enrichment) VALUES (%s, %s, %s, %s, %s)",
        (track_id, name, stored_artist or (artists or [""])[0], raw, artists is None),
    )
    return track_id


def test_a_capture_replaces_the_account_data_play_it_matches_and_keeps_its_facts(db, tmp_path):
    listener = user(db)
    when = START + timedelta(seconds=37)  # 20:00:37; account data says "20:00"
    basic = [basic_row(when, 7, ms=123_000), basic_row(when + timedelta(minutes=10), 8)]
    run_import(db, listener, write_json(tmp_path / "StreamingHistory_music_0.json", basic))
    track_id = catalogue_track(db, 7, "Song 7", ["Artist 0"])

    assert capture(db, listener, track_id, when) == 0  # no new play: a more precise one
    assert play_rows(db, listener) == [
        (when, track_id, "Song 7", 123_000, "polling"),
        (START.replace(minute=10), None, "Song 8", 200_000, "export_basic"),
    ]
    assert capture(db, listener, track_id, when) == 0  # the next capture sees the same page
    assert len(play_rows(db, listener)) == 2


def test_account_data_is_one_play_with_a_capture_of_it_whatever_artist_it_names(db, tmp_path):
    listener = user(db)
    when = START + timedelta(seconds=12)
    get_lucky = catalogue_track(db, 1, "Get Lucky", ["Daft Punk", "Pharrell Williams"])
    capture(db, listener, get_lucky, when)
    basic = [
        {
            "endTime": when.strftime("%Y-%m-%d %H:%M"),
            "artistName": "Pharrell Williams",
            "trackName": "Get Lucky",
            "msPlayed": 248_000,
        },
        {
            "endTime": when.strftime("%Y-%m-%d %H:%M"),
            "artistName": "Daft Punk",
            "trackName": "Get  lucky ",
            "msPlayed": 9_000,
        },  # a second play of it in the same minute: a new one
    ]
    summary = run_import(db, listener, write_json(tmp_path / "StreamingHistory_music_0.json", basic))
    assert (summary["already_known"], summary["new_plays"], summary["linked_by_name"]) == (1, 1, 1)
    assert [r[1] for r in play_rows(db, listener)] == [get_lucky, get_lucky]


COMPILATION = {"master_metadata_album_artist_name": "Various Artists", "master_metadata_track_name": "One More Time"}


def one_more_time(when, ms: int = 320_000) -> dict:
    """Account data names the track's artist where the extended export names the album's."""
    return {
        "endTime": when.strftime("%Y-%m-%d %H:%M"),
        "artistName": "Daft Punk",
        "trackName": "One More Time",
        "msPlayed": ms,
    }


def test_a_compilation_play_is_one_play_in_both_exports_whichever_comes_first(db, tmp_path):
    when = START + timedelta(seconds=45)
    extended = write_json(tmp_path / "Streaming_History_Audio_2021_0.json", [extended_row(when, 5, **COMPILATION)])
    basic = write_json(tmp_path / "StreamingHistory_music_0.json", [one_more_time(when)])

    first = user(db, "extended-first")
    run_import(db, first, extended)
    assert run_import(db, first, basic)["already_known"] == 1
    assert [r[4] for r in play_rows(db, first)] == ["export"]

    second = user(db, "basic-first")
    run_import(db, second, basic)
    summary = run_import(db, second, extended, force=True)
    assert (summary["new_plays"], summary["completed"]) == (0, 1)
    assert [(r[0], r[4]) for r in play_rows(db, second)] == [(when, "export")]


def test_account_data_links_to_a_compilation_track_by_any_of_its_artists(db, tmp_path):
    listener = user(db)
    # known from an extended export only: "Various Artists", not fetched from Spotify yet
    run_import(
        db,
        listener,
        write_json(tmp_path / "Streaming_History_Audio_2021_0.json", [extended_row(START, 5, **COMPILATION)]),
    )
    fetched = catalogue_track(db, 6, "Around the World", ["Daft Punk"], stored_artist="Various Artists")
    query(db, "INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, %s, now())", (listener, fetched))
    later = START + timedelta(days=3)
    rows = [
        one_more_time(later),
        {
            "endTime": later.strftime("%Y-%m-%d %H:%M"),
            "artistName": "Daft Punk",
            "trackName": "Around the World",
            "msPlayed": 1000,
        },
        {
            "endTime": later.strftime("%Y-%m-%d %H:%M"),
            "artistName": "Someone Else",
            "trackName": "Song 404",
            "msPlayed": 1000,
        },
    ]
    summary = run_import(db, listener, write_json(tmp_path / "StreamingHistory_music_0.json", rows))
    assert (summary["new_plays"], summary["linked_by_name"]) == (3, 2)
    linked = dict(query(db, "SELECT track_name, track_id FROM plays WHERE source = 'export_basic'"))
    assert linked == {"One More Time": track_uri(5)[14:], "Around the World": fetched, "Song 404": None}


def test_a_capture_and_the_export_of_one_play_seconds_apart_are_one_play(db, tmp_path):
    listener = user(db)
    track_id = catalogue_track(db, 3, "Song 3", ["Artist 3"])
    capture(db, listener, track_id, START + timedelta(seconds=3))  # Spotify's two clocks disagree
    summary = run_import(
        db, listener, write_json(tmp_path / "Streaming_History_Audio_2021_0.json", [extended_row(START, 3)])
    )
    assert (summary["new_plays"], summary["completed"]) == (0, 1)
    assert [(r[0], r[4]) for r in play_rows(db, listener)] == [(START, "export")]

    assert capture(db, listener, track_id, START - timedelta(seconds=4)) == 0  # and the other way round
    # a replay after a 10-second skip is another play, although it ends 25 s later
    skipped = extended_row(START + timedelta(minutes=30), 3, ms=10_000, skipped=True)
    run_import(db, listener, write_json(tmp_path / "Streaming_History_Audio_2021_1.json", [skipped]))
    assert capture(db, listener, track_id, START + timedelta(minutes=30, seconds=25)) == 1
    assert len(play_rows(db, listener)) == 3
