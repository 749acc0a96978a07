//! The report as people read it: the Markdown tables of `results.md` and
//! the strip chart of `failover-times.svg`.
//!
//! It only lays out a [`Report`]; it must never compute a figure of its own.

use crate::lab::System;
use crate::report::{json_number, Report, Summary};

fn whole(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{x:.0}"),
        None => "–".into(),
    }
}

fn three(s: &Summary) -> String {
    format!("{} / {} / {}", whole(s.p50), whole(s.p99), whole(s.max))
}

fn count(v: Option<u64>) -> String {
    v.map_or("–".into(), |n| n.to_string())
}

/// The results table, the restart and soak tables and the resources table.
pub fn markdown(report: &Report) -> String {
    let mut t = String::from(
        "| system | timers | scenario | trials | moved | to new active p50 / p99 / max (ms) | DNS p50 / p99 / max | HAProxy p50 / p99 / max | longest split brain (ms) | trials with split brain | client failures |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &report.results {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.system.name(),
            r.timers.name(),
            r.scenario.name(),
            r.completed,
            r.moved,
            three(&r.failover_ms),
            three(&r.dns_ms),
            three(&r.haproxy_ms),
            whole(r.split_brain_ms.max),
            r.trials_with_split_brain,
            r.client_failures,
        ));
    }
    let restarts: Vec<_> = report.results.iter().filter_map(|r| r.restart.as_ref().map(|x| (r, x))).collect();
    if !restarts.is_empty() {
        t.push_str(
            "\nRestart in place (the active site's daemon killed and started again; \"other site active\" counts trials in which the other site answered 200 at any point; \"outage unseen\" those in which the prober stalled across the whole outage, whose gap is then an upper bound):\n\n\
             | system | timers | scenario | trials | restart gap p50 / p99 / max (ms) | outage unseen | not back | other site active | DNS or HAProxy moved | epoch changed | longest split brain (ms) | trials with split brain |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (r, x) in restarts {
            // keepalived and etcd have neither services nor an epoch here.
            let ours = |n: usize| if r.system == System::Failover { n.to_string() } else { "–".into() };
            t.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.system.name(),
                r.timers.name(),
                r.scenario.name(),
                r.completed,
                three(&x.restart_gap_ms),
                x.outage_unseen,
                x.not_back,
                r.moved,
                ours(x.traffic_moved),
                ours(x.epoch_changed),
                whole(r.split_brain_ms.max),
                r.trials_with_split_brain,
            ));
        }
    }
    if !report.soaks.is_empty() {
        t.push_str(
            "\nSoaks (nothing should move; \"role changes\" as the sites counted them, keepalived's as the prober saw the VIP move; a near-miss is a renewal that landed with under a third of the lease left):\n\n\
             | system | timers | minutes | load | loss % | jitter | role changes | prober changes | longest without an active site (ms) | longest split brain (ms) | renewals | near-misses |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for s in &report.soaks {
            let done = |v: String| if s.completed { v } else { "did not complete".into() };
            t.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                s.system.name(),
                s.timers.name(),
                json_number(s.minutes),
                done(s.cpu_load.clone()),
                s.loss_percent,
                done(s.jitter.clone()),
                s.role_changes,
                s.prober_changes,
                whole(Some(s.longest_without_active_ms)),
                whole(Some(s.split_brain_ms)),
                count(s.renewals),
                count(s.near_misses),
            ));
        }
    }
    t.push_str(
        "\nResources (CPU in % of one core; RSS in KiB, and of it the anonymous memory the daemon allocated itself, the rest being the binary's code and the libraries):\n\n| load | node | CPU % | RSS KiB | of it anonymous KiB |\n|---|---|---|---|---|\n",
    );
    for (load, nodes) in &report.resources {
        for (node, v) in nodes {
            t.push_str(&format!(
                "| {load} | {node} | {} | {} | {} |\n",
                json_number(v.cpu_percent),
                v.rss_kib,
                v.rss_anon_kib
            ));
        }
    }
    t
}

/// A strip chart: one row per (system, scenario) that moved, every trial's
/// time to the new active site as a dot, p50 and p99 as ticks.
pub fn chart(report: &Report) -> String {
    let rows: Vec<_> = report.results.iter().filter(|r| r.failover_ms.n > 0).collect();
    let max = rows.iter().filter_map(|r| r.failover_ms.max).fold(1000.0, f64::max);
    let scale = 10_000f64.max((max / 1000.0).ceil() * 1000.0);
    let (left, width, row_h) = (360.0, 600.0, 34.0);
    let height = 60.0 + row_h * rows.len() as f64;
    let x = |v: f64| left + v / scale * width;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\">Time from fault to the new site answering 200 (ms); dot per trial, | p50, ¦ p99</text>\n",
        left + width + 40.0
    );
    let mut tick = 0.0;
    while tick <= scale {
        let tx = x(tick);
        svg.push_str(&format!(
            "<line x1=\"{tx}\" y1=\"30\" x2=\"{tx}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{tx}\" y=\"{}\" text-anchor=\"middle\">{tick:.0}</text>\n",
            height - 20.0,
            height - 6.0
        ));
        tick += scale / 10.0;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = 45.0 + row_h * i as f64;
        let color = match r.system {
            System::Failover => "#0969da",
            System::Keepalived => "#cf222e",
            System::Etcd => "#1a7f37",
        };
        let label = format!("{} · {} · {}", r.system.name(), r.timers.name(), r.scenario.name());
        svg.push_str(&format!("<text x=\"10\" y=\"{}\">{label}</text>\n", y + 4.0));
        for v in &r.failover_ms.values {
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"3\" fill=\"{color}\" fill-opacity=\"0.5\"/>\n",
                x(*v)
            ));
        }
        for (v, dash) in [(r.failover_ms.p50, ""), (r.failover_ms.p99, " stroke-dasharray=\"2,2\"")] {
            if let Some(v) = v {
                let px = x(v);
                svg.push_str(&format!(
                    "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{}\" stroke=\"black\" stroke-width=\"2\"{dash}/>\n",
                    y - 10.0,
                    y + 10.0
                ));
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}
