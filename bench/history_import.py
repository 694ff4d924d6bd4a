"""History import benchmark: a heavy listener's export, ours against the bare floor.

    .venv/bin/python bench/history_import.py [--plays 300000] [--out bench/out/history]

Generates (once, cached in --out) a realistic extended streaming history written from the
format on Spotify's "Understanding my data" page: ~13 years of listening sessions by one
person, Zipf-distributed over 30,000 tracks by 3,000 artists, Unicode names, skips and
shuffles, a few podcast episodes, never-played streams and local files between the music,
private fields (``ip_addr``) as real exports have them, pretty-printed like Spotify's files
(``Streaming_History_Audio_<years>_<n>.json``, 15,000 rows each). Then, on the benchmark's own
embedded PostgreSQL, each contestant in a process of its own (so its peak memory is its own),
side by side in each of ``--rounds`` rounds (3; fresh databases each round), medians reported:

- **ours, first import**: ``history.importer.import_files`` into a fresh app database (one
  transaction; each file decoded whole by msgspec, COPY straight into plays or through
  staging, the tracks met, the file fingerprints, ANALYZE);
- **ours, first import, streamed**: the same, every file through ijson row by row (the way a
  file over ``importer.WHOLE_FILE_BYTES`` goes), into a fresh database of its own;
- **ours, same files again**: recognised by their fingerprints, nothing parsed or written;
- **ours, same files again, parsed** (``force``): every row parsed, staged and found known;
- **floor**: the same rows parsed with Python's ``json`` (each file whole) and COPYed into
  a plain table with the same 13 columns, no keys, no checks, into a fresh database.

Peak memory is each process's peak resident set size (VmHWM).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GENERATOR_VERSION = 1
ROWS_PER_FILE = 15_000
FIRST_DAY = datetime(2013, 9, 1, tzinfo=UTC)
PLATFORMS = (
    "Android OS 9 API 28 (samsung, SM-G960F)",
    "iOS 16.5 (iPhone14,5)",
    "Windows 10 (10.0.19045; x64)",
    "OS X 13.4.1 [arm 2]",
    "web_player linux ;chrome 118.0.0.0;desktop",
    "Partner sonos_ppc Sonos;Play:5;ZP-8;;",
)
WORDS = (
    "love night heart fire blue summer dream rain dancing light river home gold road wild "
    "ghost city electric moon echo silver paper glass storm sweet shadow ocean honey"
).split()
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ACCENTED = ("Café", "Über", "Straße", "Niño", "Señorita", "Ação", "Æther", "東京", "Øresund", "Björk-ish")


def _name(rng: random.Random, words: int) -> str:
    parts = [rng.choice(WORDS).capitalize() for _ in range(words)]
    if rng.random() < 0.08:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(ACCENTED))
    if rng.random() < 0.1:
        parts.append(rng.choice(("(Remastered 2011)", "- Live", "(feat. MC Echo)", "- Radio Edit")))
    return " ".join(parts)


def catalogue(rng: random.Random, tracks: int = 30_000, artists: int = 3_000) -> list[tuple]:
    """(uri, track name, artist name, album name, duration ms), most listened first."""
    artist_names = [_name(rng, rng.randint(1, 3)) + f" {n}" for n in range(artists)]
    rows = []
    for n in range(tracks):
        artist = artist_names[min(int(rng.paretovariate(1.1)) - 1, artists - 1) if n < 2000 else rng.randrange(artists)]
        uri = "spotify:track:" + "".join(
            rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(22)
        )
        rows.append(
            (uri, _name(rng, rng.randint(1, 4)), artist, _name(rng, rng.randint(1, 3)), rng.randint(95_000, 420_000))
        )
    return rows


def music_row(rng: random.Random, ended: datetime, track: tuple, ms_played: int, skipped: bool) -> dict:
    uri, name, artist, album, _ = track
    return {
        "ts": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": rng.choice(PLATFORMS),
        "ms_played": ms_played,
        "conn_country": rng.choice(("SE", "SE", "SE", "DE", "GB", "ES")),
        "ip_addr": f"198.51.100.{rng.randrange(1, 255)}",
        "master_metadata_track_name": name,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": album,
        "spotify_track_uri": uri,
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": rng.choice(("trackdone", "trackdone", "trackdone", "clickrow", "fwdbtn", "playbtn")),
        "reason_end": "fwdbtn" if skipped else "trackdone",
        "shuffle": rng.random() < 0.35,
        "skipped": skipped,
        "offline": rng.random() < 0.04,
        "offline_timestamp": int(ended.timestamp() * 1000),
        "incognito_mode": False,
    }


def podcast_row(rng: random.Random, ended: datetime) -> dict:
    row = music_row(rng, ended, (None, None, None, None, 0), rng.randint(60_000, 3_000_000), False)
    return row | {
        "episode_name": f"Episode {rng.randint(1, 900)}: {_name(rng, 4)}",
        "episode_show_name": _name(rng, 2) + " Podcast",
        "spotify_episode_uri": "spotify:episode:"
        + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(22)),
    }


def listening(plays: int, seed: int = 13):
    """Rows in time order: ``plays`` music plays with a few other rows between them."""
    rng = random.Random(seed)
    tracks = catalogue(rng)
    weights = [1 / (rank + 1) ** 0.85 for rank in range(len(tracks))]
    days = 13 * 365
    per_day = plays / days
    made, day = 0, 0
    while made < plays:
        start = FIRST_DAY + timedelta(days=day, hours=rng.randint(6, 21), minutes=rng.randrange(60))
        day = (day + 1) % days
        at = start
        for track in rng.choices(tracks, weights=weights, k=max(1, int(rng.gauss(per_day, per_day / 3)))):
            if made >= plays:
                break
            skipped = rng.random() < 0.18
            ms = rng.randint(1_500, track[4] // 2) if skipped else track[4]
            at += timedelta(milliseconds=ms + rng.randint(1_000, 4_000))
            yield music_row(rng, at, track, ms, skipped)
            made += 1
            roll = rng.random()
            if roll < 0.03:
                at += timedelta(minutes=rng.randint(20, 60))
                yield podcast_row(rng, at)
            elif roll < 0.04:
                at += timedelta(seconds=2)
                yield music_row(rng, at, track, 0, True)  # a stream that never played
            elif roll < 0.045:
                at += timedelta(minutes=4)
                local = (None, "Voice memo " + str(rng.randint(1, 99)), "Me", None, 200_000)
                yield music_row(rng, at, local, 200_000, False)


def generate(plays: int, out: Path) -> list[Path]:
    """The export's files, made once per (plays, generator version) and kept in ``out``."""
    marker = out / f"plays-{plays}-v{GENERATOR_VERSION}.done"
    if marker.exists():
        return sorted(out.glob("Streaming_History_Audio_*.json"))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        old.unlink()
    rows = sorted(listening(plays), key=lambda r: r["ts"])
    paths = []
    for n in range(0, len(rows), ROWS_PER_FILE):
        chunk = rows[n : n + ROWS_PER_FILE]
        years = f"{chunk[0]['ts'][:4]}-{chunk[-1]['ts'][:4]}"
        path = out / f"Streaming_History_Audio_{years}_{n // ROWS_PER_FILE}.json"
        path.write_text(json.dumps(chunk, indent=2, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    marker.write_text("")
    return paths


# -- contestants, each in a process of its own ---------------------------------------------
FLOOR_COLUMNS = (
    ("ts", "timestamptz"),
    ("spotify_track_uri", "text"),
    ("master_metadata_track_name", "text"),
    ("master_metadata_album_artist_name", "text"),
    ("master_metadata_album_album_name", "text"),
    ("ms_played", "integer"),
    ("reason_start", "text"),
    ("reason_end", "text"),
    ("skipped", "boolean"),
    ("shuffle", "boolean"),
    ("offline", "boolean"),
    ("platform", "text"),
    ("conn_country", "text"),
)


def floor(url: str, paths: list[Path]) -> dict:
    import psycopg2

    names = [c for c, _ in FLOOR_COLUMNS]
    rows = 0
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE floor_plays ({', '.join(f'{c} {t}' for c, t in FLOOR_COLUMNS)})")
        for path in paths:
            with open(path, "rb") as handle:
                data = json.load(handle)
            buffer = io.StringIO()
            for row in data:
                buffer.write("\t".join("\\N" if row.get(c) is None else str(row[c]) for c in names) + "\n")
            rows += len(data)
            buffer.seek(0)
            cur.copy_expert(f"COPY floor_plays ({', '.join(names)}) FROM STDIN", buffer)
    conn.close()
    return {"rows": rows, "stored": rows}


def ours(url: str, paths: list[Path], force: bool, streamed: bool = False) -> dict:
    import psycopg2

    import database
    from history import importer
    from history.importer import import_files, owner

    if streamed:  # every file the way one over importer.WHOLE_FILE_BYTES goes: ijson, row by row
        importer.WHOLE_FILE_BYTES = 0

    conn = psycopg2.connect(url, connection_factory=database.Connection)
    with database.transaction(conn) as cur:
        user_id = owner(cur, "heavy-listener")
    summary = import_files(conn, user_id, [(str(p), None) for p in paths], force=force)
    with database.transaction(conn) as cur:
        cur.execute("SELECT count(*) FROM plays")
        stored = database.fetch_value(cur)
    conn.close()
    return {"rows": summary["rows"], "stored": stored, "new_plays": summary["new_plays"]}


def child(kind: str, url: str, out: Path) -> None:
    paths = sorted(out.glob("Streaming_History_Audio_*.json"))
    started = time.perf_counter()
    if kind == "floor":
        result = floor(url, paths)
    else:
        result = ours(url, paths, force=kind == "again-parsed", streamed=kind == "first-streamed")
    result["wall"] = time.perf_counter() - started
    result["peak_mb"] = peak_memory_mb()
    print(json.dumps(result))


def peak_memory_mb() -> float:
    """This process's peak resident memory since it started (VmHWM: unlike ru_maxrss it is
    not inherited from the parent that forked us, which holds the generated rows)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_result(results: list[dict]) -> dict:
    """Per field, the median over the rounds (rows are the same in every round)."""
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def run_child(kind: str, url: str, out: Path) -> dict:
    answer = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plays", type=int, default=300_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "history")
    parser.add_argument("--rounds", type=int, default=3, help="side-by-side rounds; medians are reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.out)
        return

    import psycopg2

    import database
    import db_config

    started = time.perf_counter()
    paths = generate(args.plays, args.out)
    size = sum(p.stat().st_size for p in paths)
    print(f"export: {len(paths)} files, {size / 1e6:.0f} MB ({time.perf_counter() - started:.0f} s to make or find)")

    rounds: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        server = db_config.EmbeddedPostgres(Path(tmp), cleanup_mode="delete")
        for number in range(args.rounds):  # the contestants side by side, round after round
            urls = {name: server.url(f"{name}{number}") for name in ("ours", "streamed", "floor")}
            for name in ("ours", "streamed"):
                with psycopg2.connect(urls[name]) as conn:
                    database.apply_schema(conn)
                conn.close()
            with psycopg2.connect(urls["floor"]) as conn, conn.cursor() as cur:
                cur.execute("SHOW server_version")
                version = database.fetch_value(cur).split()[0]
            conn.close()
            rounds.append(
                {
                    "first": run_child("first", urls["ours"], args.out),
                    "again": run_child("again", urls["ours"], args.out),
                    "again-parsed": run_child("again-parsed", urls["ours"], args.out),
                    "first-streamed": run_child("first-streamed", urls["streamed"], args.out),
                    "floor": run_child("floor", urls["floor"], args.out),
                }
            )
            this = rounds[-1]
            print(f"round {number + 1}: first import {this['first']['wall'] / this['floor']['wall']:.2f}x the floor")
        server.server().cleanup()
    results = {key: median_result([r[key] for r in rounds]) for key in rounds[0]}
    ratio = statistics.median(r["first"]["wall"] / r["floor"]["wall"] for r in rounds)

    floor_wall = results["floor"]["wall"]
    labels = {
        "floor": "floor: Python's json + COPY into a plain table",
        "first": "ours, first import",
        "again": "ours, same files again (fingerprints)",
        "again-parsed": "ours, same files again, parsed (force)",
        "first-streamed": "ours, first import, every file streamed (ijson, as a file over 64 MB)",
    }
    print(
        f"\n{args.plays:,} plays, {len(paths)} files, {size / 1e6:.0f} MB of JSON; PostgreSQL {version}, 2 cores; "
        f"medians of {args.rounds} rounds\n"
    )
    print("| contestant | rows read | rows in the table | wall s | × floor | peak memory MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in ("floor", "first", "first-streamed", "again", "again-parsed"):
        r = results[key]
        print(
            f"| {labels[key]} | {r['rows']:,} | {r['stored']:,} | {r['wall']:.1f} | "
            f"{r['wall'] / floor_wall:.2f} | {r['peak_mb']:.0f} |"
        )
    first = results["first"]["wall"]
    print(
        f"\nfirst import {ratio:.2f}x the floor, the median of the rounds' ratios (target <= 1.5x); "
        f"peak {results['first']['peak_mb']:.0f} MB (target < 300); "
        f"the same files again {100 * results['again']['wall'] / first:.0f}% of the first import, "
        f"{100 * results['again-parsed']['wall'] / first:.0f}% when parsed again (target <= 30%)"
    )


if __name__ == "__main__":
    main()
