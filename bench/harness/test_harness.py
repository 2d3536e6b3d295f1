"""Tests of the harness's computations: `python3 -m unittest discover -s bench/harness`."""

import copy
import unittest
import xml.etree.ElementTree as ET

import report
import spike


def seconds(offered, acknowledged):
    return [
        {"second": i, "offered": o, "acknowledged": a}
        for i, (o, a) in enumerate(zip(offered, acknowledged))
    ]


def http_result(**overrides):
    result = {
        "profile": "spike",
        "offered_rate": 100,
        "duration_s": 15.0,
        "concurrency": 8,
        "batch_events": 10,
        "scheduled": 4200,
        "sent": 4200,
        "acknowledged": 4200,
        "rejected": 0,
        "failed": 0,
        "dropped_by_generator": 0,
        "achieved_events_per_s": 280,
        "latency_ms": {"p50": 5.0, "p99": 40.0, "max": 90.0},
        "lake_found": 4200,
        "lake_unique": 4200,
        "expected": 4200,
        "lost": 0,
        "duplicates": 0,
        "durable_latency_ms": {"count": 4200, "p50_ms": 3000.0, "p99_ms": 4700.0, "max_ms": 4900.0},
        "spate_cpu_s": 1.0,
        "spate_peak_rss_mib": 100.0,
        # 6 s at R, 3 s at 10 R, 6 s at R; acknowledged at 500/s until caught up.
        "per_second": seconds(
            [100] * 6 + [1000] * 3 + [100] * 6 + [0, 0, 0],
            [100] * 6 + [500] * 3 + [500, 500, 500, 400, 100, 100, 0, 0, 0],
        ),
    }
    result.update(overrides)
    return result


def results_with(steps, mode="quick"):
    return {
        "command": "bash bench/run.sh --quick",
        "mode": mode,
        "started": "2026-11-23 23:00:00 UTC",
        "finished": "2026-11-23 23:10:00 UTC",
        "machine": {"cpus": 2, "cpu_model": "AMD EPYC", "memory_gib": 23.5, "kernel": "6.1", "rustc": "rustc 1.95", "python": "Python 3.11"},
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "load_average": {"start": [0.1, 0.1, 0.1], "end": [0.2, 0.2, 0.2]},
        "steps": {
            name: {"ok": True, "result": result, "command": f"cmd {name}", "started": "t", "load_average": [0.1, 0.1, 0.1], "elapsed_s": 1.0}
            for name, result in steps.items()
        },
        "speedup": None,
    }


class SpikeTest(unittest.TestCase):
    def test_window_scales_with_the_duration(self):
        self.assertEqual(spike.spike_window(150), (60.0, 90.0))
        self.assertEqual(spike.spike_window(30), (12.0, 18.0))

    def test_lag_is_cumulative_offered_minus_acknowledged(self):
        per = seconds([100, 1000, 100, 0], [100, 400, 500, 200])
        self.assertEqual(spike.lag_series(per), [0, 600, 200, 0])

    def test_recovery_after_the_spike(self):
        run = http_result()
        self.assertEqual(spike.lag_series(run["per_second"])[8:14], [1500, 1100, 700, 300, 0, 0])
        lag = spike.recovery(run["per_second"], 100, 15.0, 5.0)
        # Backlog 1500 events (15 s at R) when the spike ends at t=9, then 1100, 700
        # and 300 at t=10, 11, 12: under 5 s from t=12, 3 s after the spike.
        self.assertEqual(lag["spike_end_s"], 9.0)
        self.assertEqual(lag["max_lag_events"], 1500)
        self.assertEqual(lag["max_lag_s"], 15.0)
        self.assertEqual(lag["recovered_after_s"], 3.0)

    def test_never_recovered_when_the_last_sample_is_over(self):
        per = seconds([100] * 6 + [1000] * 3, [100] * 6 + [100] * 3)
        self.assertIsNone(spike.recovery(per, 100, 15.0)["recovered_after_s"])

    def test_no_lag_means_immediate_recovery(self):
        per = seconds([100] * 15, [100] * 15)
        self.assertEqual(spike.recovery(per, 100, 15.0)["recovered_after_s"], 0.0)

    def test_svg_is_well_formed(self):
        run = http_result()
        svg = spike.render_svg(run["per_second"], 100, 15.0, "W4 <test> & co")
        root = ET.fromstring(svg)
        self.assertTrue(root.tag.endswith("svg"))
        self.assertEqual(len(root.findall("{http://www.w3.org/2000/svg}polyline")), 4)


class LossCheckTest(unittest.TestCase):
    def test_clean_run_passes(self):
        self.assertTrue(report.loss_check(http_result())[0])

    def test_acknowledged_but_missing_fails(self):
        ok, why = report.loss_check(http_result(lake_unique=4190, lost=10))
        self.assertFalse(ok)
        self.assertIn("10 acknowledged events missing", why)

    def test_failed_events_may_be_missing(self):
        run = http_result(acknowledged=4100, failed=100, lake_unique=4100, lost=100)
        self.assertTrue(report.loss_check(run)[0])

    def test_verify_missing_fails(self):
        self.assertFalse(report.loss_check(http_result(lost=None))[0])


class TargetsTest(unittest.TestCase):
    def test_spike_targets_from_measurements(self):
        results = results_with({"http_spike": http_result()})
        rows = {r["target"]: r for r in report.evaluate_targets(results)}
        self.assertTrue(rows["spike W4: zero loss"]["met"])
        self.assertTrue(rows["spike W4: spate peak RSS ≤ 256 MiB"]["met"])
        recovery = rows["spike W4: lag under 5 s within 30 s after the spike"]
        self.assertTrue(recovery["met"])
        self.assertIn("3 s after the spike", recovery["measured"])
        self.assertIsNone(rows["ingest W1 ≥ 1.5 M events/s"]["met"])

    def test_generator_drops_fail_zero_loss(self):
        results = results_with({"http_spike": http_result(dropped_by_generator=500, spate_peak_rss_mib=300.0)})
        rows = {r["target"]: r for r in report.evaluate_targets(results)}
        self.assertFalse(rows["spike W4: zero loss"]["met"])
        self.assertIn("500 never sent", rows["spike W4: zero loss"]["measured"])
        self.assertFalse(rows["spike W4: spate peak RSS ≤ 256 MiB"]["met"])

    def test_ingest_and_http_targets(self):
        ingest = {"events": 1_000_000, "events_per_s": 450_000, "peak_rss_mib": 200.0}
        steady = http_result(profile="steady", offered_rate=500_000, achieved_events_per_s=510_000)
        rows = {r["target"]: r for r in report.evaluate_targets(results_with({"ingest_w1": ingest, "http_steady": steady}))}
        self.assertFalse(rows["ingest W1 ≥ 1.5 M events/s"]["met"])
        self.assertEqual(rows["ingest W1 ≥ 1.5 M events/s"]["measured"], "450 k events/s")
        self.assertTrue(rows["ingest W1 peak RSS ≤ 256 MiB"]["met"])
        self.assertTrue(rows["HTTP W1 ≥ 500 k events/s with p99 ≤ 1 s, no loss"]["met"])
        slow = copy.deepcopy(steady)
        slow["latency_ms"]["p99"] = 1500.0
        rows = {r["target"]: r for r in report.evaluate_targets(results_with({"http_steady": slow}))}
        self.assertFalse(rows["HTTP W1 ≥ 500 k events/s with p99 ≤ 1 s, no loss"]["met"])

    def test_side_by_side_target_from_the_fluent_bit_ratios(self):
        target = "side by side: ≥ 20× Fluent Bit's events/s at ≤ 1/8 of its CPU per event"
        peers = {"events": 1_000_000, "ratios": {"fluent-bit": {"speed": 4.4, "cpu_per_event": 3.08, "peak_rss": 0.26}}}
        rows = {r["target"]: r for r in report.evaluate_targets(results_with({"peers": peers}))}
        self.assertFalse(rows[target]["met"])
        self.assertEqual(rows[target]["measured"], "4.4× as fast, 3.08× less CPU per event (1,000,000 W1 events)")
        peers["ratios"]["fluent-bit"] = {"speed": 21.0, "cpu_per_event": 8.5, "peak_rss": 0.5}
        rows = {r["target"]: r for r in report.evaluate_targets(results_with({"peers": peers}))}
        self.assertTrue(rows[target]["met"])
        skipped = {"events": 1_000_000, "ratios": {}}
        rows = {r["target"]: r for r in report.evaluate_targets(results_with({"peers": skipped}))}
        self.assertIsNone(rows[target]["met"])
        self.assertIn("not installed", rows[target]["measured"])

    def test_query_target_is_the_worst_question(self):
        def q(name, ratio):
            return {"name": name, "question": name, "sql": "SELECT 1", "rows": 1, "spate_s": ratio, "duckdb_s": 1.0, "ratio": ratio}

        query = {"events": 20_000_000, "files": 900, "lake_bytes": 2**30, "reps": 5, "duckdb_version": "1.5.6", "queries": [q("a", 0.8), q("b", 1.6)]}
        target = "query: each question within 1.5× of DuckDB's time"
        rows = {r["target"]: r for r in report.evaluate_targets(results_with({"query_vs_duckdb": query}))}
        self.assertFalse(rows[target]["met"])
        self.assertIn("worst: b", rows[target]["measured"])
        query["queries"][1]["ratio"] = 1.4
        rows = {r["target"]: r for r in report.evaluate_targets(results_with({"query_vs_duckdb": query}))}
        self.assertTrue(rows[target]["met"])
        results = results_with({"query_vs_duckdb": query})
        results["targets"] = report.evaluate_targets(results)
        self.assertIn("| 1.40× |", report.render_markdown(results))


class MarkdownTest(unittest.TestCase):
    def test_splice_replaces_only_the_generated_section(self):
        doc = f"# Title\n\nintro\n\n{report.BEGIN_MARKER}\nold\n{report.END_MARKER}\n\n## History\nkept\n"
        new = f"{report.BEGIN_MARKER}\nnew\n{report.END_MARKER}\n"
        out = report.splice(doc, new)
        self.assertIn("new", out)
        self.assertNotIn("old", out)
        self.assertTrue(out.startswith("# Title\n\nintro\n\n"))
        self.assertTrue(out.endswith("## History\nkept\n"))
        self.assertEqual(report.splice(out, new), out)

    def test_splice_without_markers_goes_under_the_title(self):
        out = report.splice("# Title\n\nhand-written\n", "SECTION\n")
        self.assertEqual(out, "# Title\n\nSECTION\n\nhand-written\n")

    def test_render_marks_failures_loudly(self):
        results = results_with({"http_spike": http_result(lake_unique=4000, lost=200)})
        results["steps"]["http_spike"]["loss_check_failed"] = True
        results["steps"]["ingest_w1"] = {"ok": False, "command": "bash bench/scripts/ingest.sh w1", "error": "exit 1: boom", "started": "t", "load_average": [1, 1, 1], "elapsed_s": 2}
        results["targets"] = report.evaluate_targets(results)
        text = report.render_markdown(results)
        self.assertIn("**LOSS CHECK FAILED**", text)
        self.assertIn("**FAILED** (`bash bench/scripts/ingest.sh w1`): exit 1: boom", text)
        self.assertIn("**NOT met**", text)
        self.assertIn("| 3,000 / 4,700 |", text)
        self.assertTrue(text.startswith(report.BEGIN_MARKER))
        self.assertTrue(text.rstrip().endswith(report.END_MARKER))


if __name__ == "__main__":
    unittest.main()
