//! Reports about one message judged in either order.

use std::collections::BTreeMap;
use std::time::Duration;

use spine_core::ids::{MailboxId, MessageId, WorkflowId};
use spine_core::time::Timestamp;

use super::{handle, InFlight, Outcome};
use crate::checker::Checker;
use crate::driver::tests::Count;
use crate::eventlog::EventLog;
use crate::model::SendSpec;

struct World {
    checker: Checker,
    log: EventLog,
    count: Count,
    refused: BTreeMap<String, u64>,
    flight: InFlight,
}

impl World {
    fn new() -> World {
        World {
            checker: Checker::new(),
            log: EventLog::new(),
            count: Count::default(),
            refused: BTreeMap::new(),
            flight: InFlight::default(),
        }
    }

    fn judge(&mut self, o: Outcome) {
        handle(
            o,
            &mut self.checker,
            &mut self.log,
            &mut self.count,
            &mut self.refused,
            &mut self.flight,
        );
    }
}

fn mailbox(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

fn sent(id: MessageId, to: &str, at: u64) -> Outcome {
    Outcome::Sent {
        spec: SendSpec {
            from: mailbox("SENDER1"),
            to: mailbox(to),
            workflow: WorkflowId::parse("WF1").unwrap(),
            bytes: 10,
            chunks: 1,
            content_seed: 1,
        },
        issued: 0,
        result: Ok(id),
        wall: Duration::ZERO,
        at: Timestamp::from_micros(at),
    }
}

fn collected(id: MessageId, by: &str, at: u64) -> Outcome {
    Outcome::Collected {
        mailbox: mailbox(by),
        id,
        ok: true,
        at: Timestamp::from_micros(at),
    }
}

fn id(suffix: u32) -> MessageId {
    MessageId::from_parts(Timestamp::from_micros(1_700_000_000_000_000), suffix).unwrap()
}

#[test]
fn a_push_collected_before_the_senders_answer_counts_as_delivered() {
    let mut w = World::new();
    w.judge(collected(id(1), "RECIPIENT1", 5));
    assert_eq!(
        w.checker.collected, 0,
        "not judged before the send is known"
    );
    w.judge(sent(id(1), "RECIPIENT1", 4));
    assert_eq!(w.checker.collected, 1);
    assert_eq!(w.count.delivered, 1);
    assert_eq!(w.checker.uncollected().count(), 0);
    assert_eq!(w.checker.misdelivered, 0);
}

#[test]
fn the_usual_order_counts_once_and_a_second_collect_is_a_violation() {
    let mut w = World::new();
    w.judge(sent(id(2), "RECIPIENT1", 4));
    assert_eq!(w.checker.uncollected().count(), 1);
    w.judge(collected(id(2), "RECIPIENT1", 6));
    assert_eq!((w.checker.collected, w.count.delivered), (1, 1));
    w.judge(collected(id(2), "RECIPIENT1", 7));
    assert_eq!(
        w.checker.misdelivered, 1,
        "collected again after acknowledging"
    );
}

#[test]
fn an_early_collect_by_the_wrong_mailbox_is_still_caught() {
    let mut w = World::new();
    w.judge(collected(id(3), "INTRUDER1", 5));
    w.judge(sent(id(3), "RECIPIENT1", 4));
    assert_eq!(w.checker.misdelivered, 1);
    assert_eq!(w.checker.collected, 0);
}

#[test]
fn a_collect_of_a_send_never_answered_is_not_counted() {
    let mut w = World::new();
    w.judge(collected(id(4), "RECIPIENT1", 5));
    assert_eq!((w.checker.collected, w.count.delivered), (0, 0));
    assert_eq!(w.checker.uncollected().count(), 0);
}
