"""Tests of the side-by-side step and the start-up measurement:
`python3 -m unittest discover -s bench/harness`."""

import os
import shutil
import subprocess
import stat
import tempfile
import unittest
from pathlib import Path

import peers
import report
import startup


class ParseTimeOutput(unittest.TestCase):
    def test_figures_line(self):
        self.assertEqual(peers.parse_time_output("2.04 5.10 1.90 241664\n"), (2.04, 5.10, 1.90, 241664))

    def test_figures_after_the_exit_status_note(self):
        text = "Command exited with non-zero status 1\n0.01 0.00 0.00 2048\n"
        self.assertEqual(peers.parse_time_output(text), (0.01, 0.0, 0.0, 2048))

    def test_empty_output_is_an_error(self):
        with self.assertRaises(ValueError):
            peers.parse_time_output("\n")


class FiguresAndRatios(unittest.TestCase):
    def test_figures(self):
        f = peers.figures(1_000_000, 2.0, 3.0, 0.5, 241664)
        self.assertEqual(f["events_per_s"], 500_000)
        self.assertEqual(f["cpu_s_per_million"], 3.5)
        self.assertEqual(f["peak_rss_mib"], 236.0)

    def test_zero_wall_is_an_error(self):
        with self.assertRaises(ValueError):
            peers.figures(10, 0.0, 0.0, 0.0, 1)

    def test_ratios_favour_spate_above_one(self):
        spate = peers.figures(1_000_000, 2.0, 3.0, 0.5, 241664)
        fluent = peers.figures(1_000_000, 11.0, 10.0, 0.7, 48128)
        r = peers.ratios(spate, fluent)
        self.assertEqual(r["speed"], 5.5)
        self.assertEqual(r["cpu_per_event"], round(10.7 / 3.5, 2))
        self.assertEqual(r["peak_rss"], round(47.0 / 236.0, 2))


def write_script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


class Compare(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.corpus = self.dir / "w1.txt"
        self.corpus.write_text("{}\n" * 5)
        # Stands in for `spate ingest`: exits 0.
        self.spate = write_script(self.dir / "spate", "exit 0\n")

    def tearDown(self):
        self.tmp.cleanup()

    def test_missing_peers_are_skipped_with_a_message_and_no_ratio(self):
        out = peers.compare(self.spate, self.corpus, 5, self.dir / "work", which=lambda _name: None)
        self.assertEqual(out["spate"]["events"], 5)
        self.assertEqual(set(out["peers"]), {"fluent-bit", "vector"})
        for result in out["peers"].values():
            self.assertIn("not installed", result["skipped"])
        self.assertEqual(out["ratios"], {})

    def test_a_peer_that_writes_every_event_gets_figures_and_ratios(self):
        fake = write_script(self.dir / "fluent-bit", 'for i in 1 2 3 4 5; do echo "{}"; done > "$PEER_OUT_DIR/fluent-bit.ndjson"\n')
        which = {"fluent-bit": fake}.get
        out = peers.compare(self.spate, self.corpus, 5, self.dir / "work", which=which)
        self.assertEqual(out["peers"]["fluent-bit"]["events"], 5)
        self.assertIn("speed", out["ratios"]["fluent-bit"])
        self.assertIn("skipped", out["peers"]["vector"])

    def test_a_peer_that_loses_events_fails(self):
        fake = write_script(self.dir / "vector", 'cat > /dev/null; echo "{}" > "$PEER_OUT_DIR/vector.ndjson"\n')
        which = {"vector": fake}.get
        with self.assertRaisesRegex(peers.PeerFailed, "wrote 1 of 5"):
            peers.compare(self.spate, self.corpus, 5, self.dir / "work", which=which)

    def test_a_peer_that_exits_non_zero_fails(self):
        fake = write_script(self.dir / "fluent-bit", "exit 3\n")
        with self.assertRaisesRegex(peers.PeerFailed, "exited 3"):
            peers.compare(self.spate, self.corpus, 5, self.dir / "work", which={"fluent-bit": fake}.get)


class Startup(unittest.TestCase):
    def test_summary_of_an_odd_count(self):
        s = startup.summarize([0.030, 0.010, 0.020])
        self.assertEqual((s["median_ms"], s["min_ms"], s["max_ms"]), (20.0, 10.0, 30.0))
        self.assertEqual(s["samples_ms"], [30.0, 10.0, 20.0])

    def test_summary_of_an_even_count_averages_the_middle_two(self):
        self.assertEqual(startup.summarize([0.010, 0.040, 0.020, 0.030])["median_ms"], 25.0)

    def test_summary_of_nothing_is_an_error(self):
        with self.assertRaises(ValueError):
            startup.summarize([])

    def test_status_line(self):
        self.assertTrue(startup.is_http_200(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"))
        self.assertFalse(startup.is_http_200(b"HTTP/1.1 503 Service Unavailable\r\n"))
        self.assertFalse(startup.is_http_200(b""))
        self.assertFalse(startup.is_http_200(b"SSH-2.0-OpenSSH 200\r\n"))

    def test_exit_timing_of_a_real_command(self):
        self.assertGreater(startup.time_exit(["true"]), 0.0)
        with self.assertRaises(startup.RunFailed):
            startup.time_exit(["false"])


if __name__ == "__main__":
    os.chdir(os.path.dirname(__file__))
    unittest.main()


class Rendering(unittest.TestCase):
    def step(self, result):
        return {"ok": True, "result": result, "command": "bash bench/peers/run.sh 1000 42",
                "started": "2026-12-06 01:00:00 UTC", "load_average": [1.0, 1.0, 1.0], "elapsed_s": 3.0}

    def test_peers_table_shows_ratios_and_skips(self):
        spate = peers.figures(1_000_000, 2.0, 3.0, 0.5, 241664)
        fluent = peers.figures(1_000_000, 11.0, 10.0, 0.7, 48128)
        result = {"events": 1_000_000, "spate": spate,
                  "peers": {"fluent-bit": fluent, "vector": {"skipped": "vector is not installed"}},
                  "ratios": {"fluent-bit": peers.ratios(spate, fluent)}}
        text = "\n".join(report.render_peers(self.step(result)))
        self.assertIn("| fluent-bit | 11.00 s |", text)
        self.assertIn("5.5× / 3.06×", text)
        self.assertIn("| vector | skipped |", text)

    def test_startup_table(self):
        s = startup.summarize([0.05, 0.07, 0.06])
        result = {"runs": 3, "version": s, "run_healthz": s, "ingest_tiny": s}
        text = "\n".join(report.render_startup(self.step(result)))
        self.assertIn("| `spate run` → first 200 on /healthz | 60.0 | 50.0 | 70.0 |", text)

    def test_a_step_not_run(self):
        self.assertIn("Not run.", report.render_peers(None))


class FluentBitLua(unittest.TestCase):
    def test_severity_script(self):
        lua = next((exe for exe in ("luajit", "lua5.4", "lua5.3", "lua5.1", "lua") if shutil.which(exe)), None)
        if lua is None:
            self.skipTest("no Lua interpreter installed")
        proc = subprocess.run([lua, "severity_test.lua"], cwd=peers.PEERS_DIR, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("passed, 0 failed", proc.stdout)
