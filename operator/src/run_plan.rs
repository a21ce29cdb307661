//! Running a member's plan on its host: the provisioning layer's runner,
//! with each changed or failed task published as an Event on the object.

use kube::runtime::events::EventType;
use tokio::sync::mpsc;

use kubeseed_provision::ssh::Session;
use kubeseed_provision::tasks::{Event, Outcome, Report, Runner, Task, TaskError};

use crate::context::Context;
use crate::controllers::{Member, publish_for};

/// Runs `tasks` on `session`, recording progress in the host's journal
/// `journal` when given (a leave keeps none: it removes the directory).
pub async fn run<K: Member>(
    ctx: &Context,
    obj: &K,
    session: &Session,
    journal: Option<&str>,
    tasks: &[Box<dyn Task>],
) -> Result<Report, TaskError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let runner = async move {
        // The runner (and with it the sender) is dropped when the run ends,
        // which ends the publisher below.
        let runner = Runner::new(session);
        let runner = match journal {
            Some(plan) => runner.journal(plan),
            None => runner,
        };
        runner
            .on_event(move |e| {
                let _ = tx.send(e.clone());
            })
            .run(tasks)
            .await
    };
    let publisher = async {
        while let Some(event) = rx.recv().await {
            match event {
                Event::Finished {
                    id,
                    outcome: Outcome::Changed,
                    elapsed,
                } => {
                    publish_for(
                        ctx,
                        obj,
                        EventType::Normal,
                        "TaskChanged",
                        &id,
                        format!("{id} ({:.1} s)", elapsed.as_secs_f64()),
                    )
                    .await;
                }
                Event::Failed {
                    id,
                    reason,
                    message,
                    ..
                } => {
                    publish_for(
                        ctx,
                        obj,
                        EventType::Warning,
                        reason,
                        &id,
                        format!("{id}: {message}"),
                    )
                    .await;
                }
                _ => {}
            }
        }
    };
    let (result, ()) = futures::join!(runner, publisher);
    result
}
