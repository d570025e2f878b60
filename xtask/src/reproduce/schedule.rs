//! Which model to train or command to run next when several run at once (`--jobs N`).
//!
//! The plan is a graph: a command waits for the models it reads and for the earlier commands
//! whose files it reads; models wait for nothing. Whenever a worker is free it takes, of the
//! tasks whose inputs are all there, the one heading the longest chain of work still to do
//! (its own estimate plus the longest chain after it): the critical-path list schedule. On the
//! cpu preset that trains the JEM and the baseline first and starts the pointwise attack, the
//! longest command, as soon as they are there.

use super::plan::{ModelRun, ModelStatus, PlannedJob};
use anyhow::{bail, Result};
use std::collections::BTreeSet;

/// How much longer a task takes with half the cores (`--threads cores/2` beside another task)
/// than alone with all of them: measured on the 2-core machine (2026-12-07), a JEM training
/// iteration of the cpu preset 0.173 s at one thread beside another against 0.121 s alone at
/// two (1.43x), the pointwise attack of JEM-1 on 16 inputs 240 s against 166 s (1.45x). In the
/// first whole `reproduce all` with two at a time (99.1 min) the tasks ranged from 0.82x (the
/// pointwise attack, 27.1 min against 32.9) through 1.6-1.8x (trainings, PGD) to 2.0x (the
/// boundary attack, 30.0 against 15.1); weighted by time, 195 task-minutes against 137 alone:
/// 1.43x.
pub const HALF_CORES_SLOWDOWN: f64 = 1.44;

/// One node of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Rough minutes it takes alone on all the cores.
    pub est_minutes: f64,
    /// Nodes (by index, all before this one) that must finish first.
    pub after: Vec<usize>,
}

/// A model to train or a command to run.
#[derive(Clone, Copy, Debug)]
pub enum Task<'a> {
    /// `jem train` (or `--resume`).
    Train(&'a ModelRun),
    /// A `jem` command of a target.
    Job(&'a PlannedJob),
}

/// The tasks among `models` and `jobs` that are not cached, in plan order (models, then
/// commands in dependency order), with the graph over them: a dependency on something cached
/// is already met.
pub fn tasks<'a>(models: &[&'a ModelRun], jobs: &[&'a PlannedJob]) -> (Vec<Task<'a>>, Vec<Node>) {
    let mut tasks = Vec::new();
    let mut nodes = Vec::new();
    for run in models.iter().filter(|r| r.status != ModelStatus::Cached) {
        tasks.push(Task::Train(run));
        nodes.push(Node {
            est_minutes: run.spec.est_minutes,
            after: Vec::new(),
        });
    }
    for job in jobs.iter().filter(|j| !j.cached) {
        let models = job.job.models();
        let mut after = BTreeSet::new();
        for (index, task) in tasks.iter().enumerate() {
            let needed = match task {
                Task::Train(run) => models.contains(&(run.id, run.seed)),
                Task::Job(earlier) => job.after.contains(&earlier.dir),
            };
            if needed {
                after.insert(index);
            }
        }
        tasks.push(Task::Job(job));
        nodes.push(Node {
            est_minutes: job.job.est_minutes,
            after: after.into_iter().collect(),
        });
    }
    (tasks, nodes)
}

/// The critical-path list scheduler over `nodes`.
#[derive(Debug)]
pub struct Scheduler {
    nodes: Vec<Node>,
    /// Own estimate plus the longest chain of dependents.
    priority: Vec<f64>,
    started: Vec<bool>,
    finished: Vec<bool>,
}

impl Scheduler {
    /// Checks that every node waits only for nodes before it (the plan's order is a
    /// dependency order) and ranks them.
    pub fn new(nodes: Vec<Node>) -> Result<Scheduler> {
        for (index, node) in nodes.iter().enumerate() {
            if let Some(&bad) = node.after.iter().find(|&&a| a >= index) {
                bail!("internal: task {index} waits for task {bad}, which is not before it");
            }
        }
        let mut priority: Vec<f64> = nodes.iter().map(|n| n.est_minutes.max(0.0)).collect();
        for index in (0..nodes.len()).rev() {
            for &before in &nodes[index].after {
                let chain = nodes[before].est_minutes.max(0.0) + priority[index];
                if chain > priority[before] {
                    priority[before] = chain;
                }
            }
        }
        let n = nodes.len();
        Ok(Scheduler {
            nodes,
            priority,
            started: vec![false; n],
            finished: vec![false; n],
        })
    }

    /// The task to start now: of those not started whose inputs are all finished, the one with
    /// the longest chain (the first in plan order on a tie); `None` when none is ready.
    pub fn next(&mut self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for index in 0..self.nodes.len() {
            let ready =
                !self.started[index] && self.nodes[index].after.iter().all(|&a| self.finished[a]);
            if ready && best.is_none_or(|b| self.priority[index] > self.priority[b]) {
                best = Some(index);
            }
        }
        if let Some(index) = best {
            self.started[index] = true;
        }
        best
    }

    /// Marks `index` finished.
    pub fn finish(&mut self, index: usize) {
        self.finished[index] = true;
    }

    /// Whether every task has finished.
    pub fn done(&self) -> bool {
        self.finished.iter().all(|&f| f)
    }
}

/// Rough wall minutes of `nodes` on `workers` at once: each task takes its estimate alone, or
/// [`HALF_CORES_SLOWDOWN`] times it when several run at once.
pub fn simulate(nodes: &[Node], workers: usize) -> f64 {
    let workers = workers.max(1);
    let factor = if workers > 1 {
        HALF_CORES_SLOWDOWN
    } else {
        1.0
    };
    let Ok(mut scheduler) = Scheduler::new(nodes.to_vec()) else {
        return nodes.iter().map(|n| n.est_minutes).sum();
    };
    // (finish time, task) of the tasks running.
    let mut running: Vec<(f64, usize)> = Vec::new();
    let mut now = 0.0_f64;
    loop {
        while running.len() < workers {
            match scheduler.next() {
                Some(index) => running.push((now + nodes[index].est_minutes * factor, index)),
                None => break,
            }
        }
        let Some(first) = (0..running.len()).min_by(|&a, &b| running[a].0.total_cmp(&running[b].0))
        else {
            return now;
        };
        let (end, index) = running.swap_remove(first);
        now = end;
        scheduler.finish(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(est: f64, after: &[usize]) -> Node {
        Node {
            est_minutes: est,
            after: after.to_vec(),
        }
    }

    /// The cpu preset's shape: two models, a long command on both, short ones on one.
    fn graph() -> Vec<Node> {
        vec![
            node(7.0, &[]),      // 0 jem
            node(4.0, &[]),      // 1 baseline
            node(18.0, &[]),     // 2 converged baseline
            node(1.0, &[1]),     // 3 eval of the baseline
            node(33.0, &[0, 1]), // 4 pointwise attack
            node(1.0, &[0]),     // 5 eval of the JEM
            node(0.5, &[5]),     // 6 reads 5's file
        ]
    }

    #[test]
    fn tasks_start_only_after_what_they_read_and_longest_chain_first() {
        let mut s = Scheduler::new(graph()).unwrap();
        // jem heads 7 + 33, baseline 4 + 33, converged 18.
        assert_eq!(s.next(), Some(0));
        assert_eq!(s.next(), Some(1));
        assert_eq!(s.next(), Some(2));
        assert_eq!(s.next(), None, "nothing else is ready");
        s.finish(1);
        assert_eq!(
            s.next(),
            Some(3),
            "the pointwise attack still waits for the JEM"
        );
        assert_eq!(s.next(), None);
        s.finish(0);
        assert_eq!(s.next(), Some(4), "the longest command first");
        assert_eq!(s.next(), Some(5));
        assert_eq!(s.next(), None, "6 waits for 5");
        for i in [2, 3, 4, 5] {
            s.finish(i);
        }
        assert!(!s.done());
        assert_eq!(s.next(), Some(6));
        s.finish(6);
        assert!(s.done());
        assert_eq!(s.next(), None);
    }

    #[test]
    fn a_dependency_on_a_later_task_is_rejected() {
        let err = Scheduler::new(vec![node(1.0, &[1]), node(1.0, &[])]).unwrap_err();
        assert!(err.to_string().contains("task 0 waits for task 1"), "{err}");
    }

    #[test]
    fn one_worker_takes_the_sum_and_two_workers_the_longer_of_the_balanced_halves() {
        let g = graph();
        let sum: f64 = g.iter().map(|n| n.est_minutes).sum();
        assert!((simulate(&g, 1) - sum).abs() < 1e-9);
        // Two workers: 0 (7) then 4 (33) on one, 1, 2, 3, 5, 6 (24.5) on the other: the first
        // ends at 40 x the slowdown.
        let two = simulate(&g, 2);
        assert!((two - 40.0 * HALF_CORES_SLOWDOWN).abs() < 1e-9, "{two}");
        // Independent equal tasks split evenly.
        let flat = vec![node(10.0, &[]); 4];
        assert!((simulate(&flat, 2) - 20.0 * HALF_CORES_SLOWDOWN).abs() < 1e-9);
    }
}
