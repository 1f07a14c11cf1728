//! The sizing arithmetic: from one node's measured capacity to the nodes,
//! partitions, disk and network a target rate needs.
//!
//! Pure: no clock, no I/O; every figure is a function of [`SizingInput`].
//!
//! Invariants and why:
//! - `nodes = ceil(target / (max_rate × (1 − headroom)))`, at least 1: each
//!   node is planned to run at no more than `1 − headroom` of what this
//!   machine sustained. A quotient within 1e-9 of a whole number counts as
//!   that number, so floating-point noise never adds a node.
//! - Inputs a person typed (target, headroom, partitions) are refused with
//!   the option's name when zero, negative, not finite or out of range;
//!   a run that sustained nothing is [`PlanError::NoCapacity`], never a
//!   division by zero or an infinite node count; more than [`MAX_NODES`]
//!   is [`PlanError::TooManyNodes`].
//! - Load is assumed to spread evenly over the nodes (mailboxes hash onto
//!   nodes as they hash onto partitions); totals are per-node figures ×
//!   nodes.
//! - Measured inputs that are unknown (no messages, no passing step) make
//!   the figures that depend on them `None`, not zero: zero would read as
//!   "free".

use serde::{Deserialize, Serialize};

use super::error::{check, PlanError};

/// The most nodes this planner will size for: beyond it the per-node
/// figure is too small for the extrapolation to mean anything.
pub const MAX_NODES: u64 = 100_000;

/// One measured point: at this rate (msgs/s), this many of something per
/// second (here: `fdatasync` groups).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// Rate, msgs/s.
    pub rate: f64,
    /// The figure at that rate, per second.
    pub per_s: f64,
}

/// Everything the arithmetic needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SizingInput {
    /// Messages per second to plan for (all nodes together).
    pub target_rate: f64,
    /// The latency bound the capacity was measured under (for messages).
    pub p99_ms: f64,
    /// The highest rate one node sustained within the bound, if any.
    pub max_rate: Option<f64>,
    /// The lowest rate tried (for the "nothing sustained" message).
    pub lowest_rate_tried: Option<u64>,
    /// Fraction of capacity kept free, in `[0, 1)`.
    pub headroom: f64,
    /// Partition actors per node.
    pub partitions_per_node: u32,
    /// Log bytes written per message sent (its record and its
    /// acknowledgement's), if measured.
    pub log_bytes_per_msg: Option<f64>,
    /// `fdatasync` groups per second at the rates that passed.
    pub fsync_curve: Vec<RatePoint>,
    /// The disk's raw 4 KiB write + `fdatasync` rate, if measured.
    pub raw_fsyncs_per_s: Option<f64>,
    /// Network bytes into a node per message (requests).
    pub wire_in_per_msg: Option<f64>,
    /// Network bytes out of a node per message (answers).
    pub wire_out_per_msg: Option<f64>,
}

/// What a target needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sizing {
    /// Nodes needed.
    pub nodes: u64,
    /// What one node may carry after headroom (msgs/s).
    pub usable_rate_per_node: f64,
    /// What each node carries at the target (msgs/s).
    pub rate_per_node: f64,
    /// `rate_per_node / max_rate`: how loaded each node is.
    pub load_per_node: f64,
    /// Partition actors per node.
    pub partitions_per_node: u32,
    /// Partition actors in total.
    pub partitions: u64,
    /// Log bytes written per second, all nodes.
    pub disk_write_bytes_per_s: Option<f64>,
    /// Log bytes written per second, one node.
    pub disk_write_bytes_per_s_per_node: Option<f64>,
    /// `fdatasync`s per second of one node at `rate_per_node` (interpolated
    /// between the measured passing steps).
    pub fsyncs_per_s_per_node: Option<f64>,
    /// `fdatasync`s per second, all nodes.
    pub fsyncs_per_s: Option<f64>,
    /// One node's `fdatasync`s per second over the disk's raw rate.
    pub fsync_share_of_raw: Option<f64>,
    /// Network bytes per second into the nodes, all nodes.
    pub network_in_bytes_per_s: Option<f64>,
    /// Network bytes per second out of the nodes, all nodes.
    pub network_out_bytes_per_s: Option<f64>,
    /// In + out per node, megabits per second.
    pub network_mbit_per_s_per_node: Option<f64>,
}

/// Sizes the target (see the module documentation).
pub fn size(input: &SizingInput) -> Result<Sizing, PlanError> {
    check(
        input.target_rate.is_finite() && input.target_rate > 0.0,
        "target-rate",
        input.target_rate,
        "a positive number of messages per second",
    )?;
    check(
        input.headroom.is_finite() && (0.0..1.0).contains(&input.headroom),
        "headroom",
        input.headroom,
        "a fraction from 0 to below 1 (0.3 keeps 30% of each node free)",
    )?;
    check(
        (1..=4096).contains(&input.partitions_per_node),
        "partitions",
        input.partitions_per_node,
        "1 to 4096",
    )?;
    let max_rate = match input.max_rate {
        Some(r) if r.is_finite() && r > 0.0 => r,
        _ => {
            return Err(PlanError::NoCapacity {
                p99_ms: input.p99_ms,
                lowest: input
                    .lowest_rate_tried
                    .map(|r| format!(", even at {r} msgs/s"))
                    .unwrap_or_default(),
            })
        }
    };
    let usable = max_rate * (1.0 - input.headroom);
    let quotient = input.target_rate / usable;
    let whole = if (quotient - quotient.round()).abs() < 1e-9 {
        quotient.round()
    } else {
        quotient.ceil()
    };
    if !whole.is_finite() || whole > MAX_NODES as f64 {
        return Err(PlanError::TooManyNodes {
            target_rate: input.target_rate,
            usable_per_node: usable,
            nodes: whole,
            max: MAX_NODES,
        });
    }
    let nodes = (whole as u64).max(1);
    let n = nodes as f64;
    let rate_per_node = input.target_rate / n;
    let known = |x: Option<f64>| x.filter(|v| v.is_finite() && *v >= 0.0);
    let disk = known(input.log_bytes_per_msg).map(|b| b * input.target_rate);
    let fsyncs_per_node = interpolate(&input.fsync_curve, rate_per_node);
    let wire_in = known(input.wire_in_per_msg).map(|b| b * input.target_rate);
    let wire_out = known(input.wire_out_per_msg).map(|b| b * input.target_rate);
    Ok(Sizing {
        nodes,
        usable_rate_per_node: usable,
        rate_per_node,
        load_per_node: rate_per_node / max_rate,
        partitions_per_node: input.partitions_per_node,
        partitions: nodes * u64::from(input.partitions_per_node),
        disk_write_bytes_per_s: disk,
        disk_write_bytes_per_s_per_node: disk.map(|d| d / n),
        fsyncs_per_s_per_node: fsyncs_per_node,
        fsyncs_per_s: fsyncs_per_node.map(|f| f * n),
        fsync_share_of_raw: fsyncs_per_node
            .zip(known(input.raw_fsyncs_per_s).filter(|r| *r > 0.0))
            .map(|(f, raw)| f / raw),
        network_in_bytes_per_s: wire_in,
        network_out_bytes_per_s: wire_out,
        network_mbit_per_s_per_node: wire_in.zip(wire_out).map(|(i, o)| (i + o) / n * 8.0 / 1e6),
    })
}

/// The figure at `rate`, linear between the nearest measured points and
/// clamped to the first or last beyond them; `None` without usable points.
pub fn interpolate(curve: &[RatePoint], rate: f64) -> Option<f64> {
    let mut points: Vec<RatePoint> = curve
        .iter()
        .copied()
        .filter(|p| p.rate.is_finite() && p.per_s.is_finite() && p.rate >= 0.0 && p.per_s >= 0.0)
        .collect();
    points.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let first = points.first()?;
    let last = points.last()?;
    if rate <= first.rate {
        return Some(first.per_s);
    }
    if rate >= last.rate {
        return Some(last.per_s);
    }
    let above = points.iter().position(|p| p.rate >= rate)?;
    let hi = points.get(above)?;
    let lo = points.get(above.checked_sub(1)?)?;
    if hi.rate <= lo.rate {
        return Some(hi.per_s);
    }
    let t = (rate - lo.rate) / (hi.rate - lo.rate);
    Some(lo.per_s + t * (hi.per_s - lo.per_s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_core::ErrorCode;

    fn input() -> SizingInput {
        SizingInput {
            target_rate: 32_000.0,
            p99_ms: 50.0,
            max_rate: Some(20_000.0),
            lowest_rate_tried: Some(1000),
            headroom: 0.3,
            partitions_per_node: 8,
            log_bytes_per_msg: Some(1300.0),
            fsync_curve: vec![
                RatePoint {
                    rate: 5000.0,
                    per_s: 400.0,
                },
                RatePoint {
                    rate: 15_000.0,
                    per_s: 600.0,
                },
            ],
            raw_fsyncs_per_s: Some(1000.0),
            wire_in_per_msg: Some(1200.0),
            wire_out_per_msg: Some(1300.0),
        }
    }

    #[test]
    fn the_target_is_divided_over_nodes_with_headroom() {
        let s = size(&input()).unwrap();
        // 20,000 × 0.7 = 14,000 usable; 32,000 / 14,000 = 2.29 → 3 nodes.
        assert_eq!(s.nodes, 3);
        assert!((s.usable_rate_per_node - 14_000.0).abs() < 1e-6);
        assert!((s.rate_per_node - 32_000.0 / 3.0).abs() < 1e-6);
        assert!((s.load_per_node - 32_000.0 / 3.0 / 20_000.0).abs() < 1e-9);
        assert_eq!(s.partitions, 24);
        assert_eq!(s.disk_write_bytes_per_s, Some(1300.0 * 32_000.0));
        let per_node = s.disk_write_bytes_per_s_per_node.unwrap();
        assert!((per_node - 1300.0 * 32_000.0 / 3.0).abs() < 1e-3);
        // 10,667 msgs/s per node: between the 5,000 and 15,000 points.
        let f = s.fsyncs_per_s_per_node.unwrap();
        assert!((f - (400.0 + 0.566_666_7 * 200.0)).abs() < 0.01, "{f}");
        assert!((s.fsyncs_per_s.unwrap() - 3.0 * f).abs() < 1e-6);
        assert!((s.fsync_share_of_raw.unwrap() - f / 1000.0).abs() < 1e-9);
        assert_eq!(s.network_in_bytes_per_s, Some(1200.0 * 32_000.0));
        assert_eq!(s.network_out_bytes_per_s, Some(1300.0 * 32_000.0));
        let mbit = s.network_mbit_per_s_per_node.unwrap();
        assert!((mbit - 2500.0 * 32_000.0 / 3.0 * 8.0 / 1e6).abs() < 1e-6);
    }

    #[test]
    fn a_target_below_one_node_needs_one_node() {
        for target in [0.001, 1.0, 100.0, 13_999.0, 14_000.0] {
            let s = size(&SizingInput {
                target_rate: target,
                ..input()
            })
            .unwrap();
            assert_eq!(s.nodes, 1, "{target}");
            assert_eq!(s.partitions, 8);
            assert!((s.rate_per_node - target).abs() < 1e-9);
        }
        let s = size(&SizingInput {
            target_rate: 14_001.0,
            ..input()
        })
        .unwrap();
        assert_eq!(s.nodes, 2);
    }

    #[test]
    fn exact_multiples_do_not_round_up() {
        for (target, headroom, nodes) in [
            (2100.0, 0.3, 3),
            (42_000.0, 0.3, 3),
            (60_000.0, 0.0, 3),
            (60_000.1, 0.0, 4),
            (10_000.0, 0.9, 5),
        ] {
            let s = size(&SizingInput {
                target_rate: target,
                headroom,
                max_rate: Some(if target < 10_000.0 { 1000.0 } else { 20_000.0 }),
                ..input()
            })
            .unwrap();
            assert_eq!(s.nodes, nodes, "{target} at headroom {headroom}");
        }
    }

    #[test]
    fn typed_inputs_out_of_range_are_refused_by_name() {
        let cases: [(SizingInput, &str); 9] = [
            (
                SizingInput {
                    target_rate: 0.0,
                    ..input()
                },
                "--target-rate",
            ),
            (
                SizingInput {
                    target_rate: -5.0,
                    ..input()
                },
                "--target-rate",
            ),
            (
                SizingInput {
                    target_rate: f64::NAN,
                    ..input()
                },
                "--target-rate",
            ),
            (
                SizingInput {
                    target_rate: f64::INFINITY,
                    ..input()
                },
                "--target-rate",
            ),
            (
                SizingInput {
                    headroom: 1.0,
                    ..input()
                },
                "--headroom",
            ),
            (
                SizingInput {
                    headroom: -0.1,
                    ..input()
                },
                "--headroom",
            ),
            (
                SizingInput {
                    headroom: f64::NAN,
                    ..input()
                },
                "--headroom",
            ),
            (
                SizingInput {
                    partitions_per_node: 0,
                    ..input()
                },
                "--partitions",
            ),
            (
                SizingInput {
                    partitions_per_node: 5000,
                    ..input()
                },
                "--partitions",
            ),
        ];
        for (i, name) in cases {
            let e = size(&i).unwrap_err();
            assert_eq!(e.code(), "PLAN_INVALID_ARGUMENT");
            assert!(e.to_string().starts_with(name), "{e}");
        }
    }

    #[test]
    fn nothing_sustained_is_no_capacity_not_a_division_by_zero() {
        for max_rate in [None, Some(0.0), Some(-1.0), Some(f64::NAN)] {
            let e = size(&SizingInput {
                max_rate,
                ..input()
            })
            .unwrap_err();
            assert_eq!(e.code(), "PLAN_NO_CAPACITY");
            assert!(e.to_string().contains("even at 1000 msgs/s"), "{e}");
            assert!(e.to_string().contains("p99 <= 50 ms"), "{e}");
        }
        let e = size(&SizingInput {
            max_rate: None,
            lowest_rate_tried: None,
            ..input()
        })
        .unwrap_err();
        assert!(!e.to_string().contains("even at"), "{e}");
    }

    #[test]
    fn absurd_node_counts_are_refused() {
        let e = size(&SizingInput {
            target_rate: 1e12,
            max_rate: Some(1.0),
            ..input()
        })
        .unwrap_err();
        assert_eq!(e.code(), "PLAN_TOO_MANY_NODES");
        let e = size(&SizingInput {
            max_rate: Some(f64::MIN_POSITIVE),
            ..input()
        })
        .unwrap_err();
        assert_eq!(e.code(), "PLAN_TOO_MANY_NODES");
        // The largest count allowed is fine.
        let s = size(&SizingInput {
            target_rate: 70_000.0,
            max_rate: Some(1.0),
            ..input()
        })
        .unwrap();
        assert_eq!(s.nodes, MAX_NODES);
    }

    #[test]
    fn unknown_measurements_stay_unknown() {
        let s = size(&SizingInput {
            log_bytes_per_msg: None,
            fsync_curve: Vec::new(),
            raw_fsyncs_per_s: None,
            wire_in_per_msg: Some(f64::NAN),
            wire_out_per_msg: None,
            ..input()
        })
        .unwrap();
        assert_eq!(s.nodes, 3);
        assert_eq!(s.disk_write_bytes_per_s, None);
        assert_eq!(s.fsyncs_per_s_per_node, None);
        assert_eq!(s.fsync_share_of_raw, None);
        assert_eq!(s.network_in_bytes_per_s, None);
        assert_eq!(s.network_mbit_per_s_per_node, None);
    }

    #[test]
    fn interpolation_is_linear_and_clamped() {
        let p = |rate, per_s| RatePoint { rate, per_s };
        assert_eq!(interpolate(&[], 5.0), None);
        assert_eq!(interpolate(&[p(f64::NAN, 1.0)], 5.0), None);
        assert_eq!(interpolate(&[p(10.0, 7.0)], 5.0), Some(7.0));
        assert_eq!(interpolate(&[p(10.0, 7.0)], 50.0), Some(7.0));
        // Unsorted input, a point in between, both ends.
        let curve = [p(300.0, 30.0), p(100.0, 10.0), p(200.0, 40.0)];
        assert_eq!(interpolate(&curve, 150.0), Some(25.0));
        assert_eq!(interpolate(&curve, 250.0), Some(35.0));
        assert_eq!(interpolate(&curve, 200.0), Some(40.0));
        assert_eq!(interpolate(&curve, 50.0), Some(10.0));
        assert_eq!(interpolate(&curve, 1e9), Some(30.0));
        // Two points at the same rate do not divide by zero.
        let same = [p(100.0, 10.0), p(100.0, 20.0), p(200.0, 30.0)];
        assert!(interpolate(&same, 150.0).unwrap().is_finite());
    }
}
