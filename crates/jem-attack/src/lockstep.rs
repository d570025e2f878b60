//! Attacking several inputs in lockstep: one classifier call per round for all of them.
//!
//! The [`pointwise`](crate::pointwise) attack is sequential per input: each query depends on the
//! answers before it, and its refinement phase asks about one candidate at a time. Alone, every
//! such query pays a whole classifier call (for JEM-k: `k` SGLD steps on the EOT chains), nearly
//! all of it per-call overhead on a small network. (The [`boundary`](crate::boundary) attack does
//! not use this: its queries are already batches of candidates, and in lockstep it was no faster,
//! measured side by side on 8 inputs of JEM-1: 198 / 226 s alone against 274 / 218 s.)
//!
//! [`in_lockstep`] runs each input's attack, unchanged, on a thread of its own against a
//! [`LockstepTarget`]: a stand-in that forwards the query to the calling thread and waits. Every
//! round, once each input still attacking has asked (or finished), the calling thread classifies
//! all the queries as one batch, in input order, and hands each its rows. Only the calling thread
//! runs the real classifier.
//!
//! A deterministic classifier answers every query as it would alone, so each input's outcome is
//! the one it gets attacked on its own, up to float round-off: a matrix product may round a row
//! differently in a batch of another size, which can flip a label decided within ~1e-7 of the
//! decision boundary. A randomised one draws from a single stream per lockstep group (given by the
//! caller), deterministically: the rounds and their order do not depend on thread timing.

use std::sync::mpsc;

use rand_pcg::Pcg64;
use tch::Tensor;

use crate::error::{AttackError, Result};
use crate::target::AttackTarget;

/// What an input's attack sends the classifying thread: one message per round.
enum Message<R> {
    /// A batch to classify for the input in `slot`; log p(y | x) goes back on `reply`.
    Classify {
        slot: usize,
        x: Tensor,
        reply: mpsc::Sender<Result<Tensor>>,
    },
    /// The input's attack ended with `result`.
    Done { slot: usize, result: Result<R> },
}

/// The classifier as one input's attack sees it inside [`in_lockstep`]: every call waits for the
/// round's batched call on the calling thread. Gradients do not cross threads, so only
/// decision-based (label-only) attacks can use it.
pub(crate) struct LockstepTarget<R> {
    slot: usize,
    num_classes: i64,
    requests: mpsc::Sender<Message<R>>,
}

fn stopped() -> AttackError {
    AttackError::InvalidArgument(
        "lockstep attack: the classifying thread stopped (an error classifying another input's \
         query)"
            .to_string(),
    )
}

impl<R> AttackTarget for LockstepTarget<R> {
    fn num_classes(&self) -> i64 {
        self.num_classes
    }

    /// log p(y | x) from the round's batched call; the classifying thread's random stream
    /// replaces `_rng`.
    fn log_probs(&self, x: &Tensor, _rng: &mut Pcg64) -> Result<Tensor> {
        if x.requires_grad() {
            return Err(AttackError::InvalidArgument(
                "lockstep attack: gradients do not cross threads (a decision-based attack only \
                 asks for labels)"
                    .to_string(),
            ));
        }
        let (reply, answer) = mpsc::channel();
        self.requests
            .send(Message::Classify {
                slot: self.slot,
                x: x.shallow_clone(),
                reply,
            })
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

/// Runs `attack(target, task)` for every task, `group_size` tasks at a time, each on a thread of
/// its own in lockstep against `target` (see the module docs), and returns the results in task
/// order. Each round's queries are classified in calls of at most `max_rows` inputs; a randomised
/// `target` draws from `group_rng(first)`, `first` being the position of the group's first task.
/// The first error, of an attack or of the classifier, is returned once every thread has stopped.
pub(crate) fn in_lockstep<T, I, R, F>(
    target: &T,
    group_size: usize,
    max_rows: usize,
    group_rng: impl Fn(usize) -> Pcg64,
    tasks: Vec<I>,
    attack: F,
) -> Result<Vec<R>>
where
    T: AttackTarget + ?Sized,
    I: Send,
    R: Send,
    F: Fn(&LockstepTarget<R>, I) -> Result<R> + Sync,
{
    let mut results = Vec::with_capacity(tasks.len());
    let mut tasks = tasks.into_iter().peekable();
    while tasks.peek().is_some() {
        let group: Vec<I> = tasks.by_ref().take(group_size.max(1)).collect();
        let mut rng = group_rng(results.len());
        results.extend(lockstep_group(target, &mut rng, max_rows, group, &attack)?);
    }
    Ok(results)
}

/// [`in_lockstep`] for one group: every task at once.
fn lockstep_group<T, I, R, F>(
    target: &T,
    rng: &mut Pcg64,
    max_rows: usize,
    tasks: Vec<I>,
    attack: &F,
) -> Result<Vec<R>>
where
    T: AttackTarget + ?Sized,
    I: Send,
    R: Send,
    F: Fn(&LockstepTarget<R>, I) -> Result<R> + Sync,
{
    let max_rows = max_rows.max(1) as i64;
    let mut results: Vec<Option<R>> = tasks.iter().map(|_| None).collect();
    let num_classes = target.num_classes();
    std::thread::scope(|scope| -> Result<()> {
        let (requests, inbox) = mpsc::channel::<Message<R>>();
        for (slot, task) in tasks.into_iter().enumerate() {
            let stand_in = LockstepTarget {
                slot,
                num_classes,
                requests: requests.clone(),
            };
            scope.spawn(move || {
                let result = attack(&stand_in, task);
                // A closed inbox: the classifying thread already stopped on an error.
                let _ = stand_in.requests.send(Message::Done { slot, result });
            });
        }
        drop(requests);
        let mut running = results.len();
        while running > 0 {
            // Each attack still running sends exactly one message per round.
            let mut queries = Vec::with_capacity(running);
            let mut finished = 0;
            for _ in 0..running {
                match inbox.recv().map_err(|_| stopped())? {
                    Message::Classify { slot, x, reply } => queries.push((slot, x, reply)),
                    Message::Done { slot, result } => {
                        results[slot] = Some(result?);
                        finished += 1;
                    }
                }
            }
            running -= finished;
            if queries.is_empty() {
                continue;
            }
            queries.sort_by_key(|(slot, ..)| *slot);
            let inputs: Vec<&Tensor> = queries.iter().map(|(_, x, _)| x).collect();
            let rows: Vec<i64> = inputs.iter().map(|x| x.size()[0]).collect();
            let all = Tensor::f_cat(&inputs, 0)?;
            let total = all.size()[0];
            let mut parts = Vec::new();
            let mut start = 0;
            while start < total {
                let length = max_rows.min(total - start);
                let chunk = all.f_narrow(0, start, length)?;
                let log_probs = tch::no_grad(|| target.log_probs(&chunk, rng))?;
                crate::target::check_log_probs(&log_probs, length, num_classes)?;
                parts.push(log_probs);
                start += length;
            }
            let log_probs = Tensor::f_cat(&parts, 0)?;
            let mut offset = 0;
            for ((_, _, reply), &n) in queries.iter().zip(&rows) {
                // A closed reply: that attack already stopped on an error of its own.
                let _ = reply.send(Ok(log_probs.f_narrow(0, offset, n)?.f_contiguous()?));
                offset += n;
            }
        }
        Ok(())
    })?;
    Ok(results
        .into_iter()
        .map(|r| r.expect("every attack reported its result"))
        .collect())
}
