use crate::reproduce::models::ModelId;
use crate::reproduce::plan::{Layout, ModelStatus, Plan, PlanOptions};
use crate::reproduce::targets::{self, TargetDef, TARGETS};
use crate::reproduce::testkit;
use crate::reproduce::{preset, ReproduceArgs};
use crate::util::workspace_root;
use jem_report::{files, write_json, StopReason};
use std::path::Path;

/// A layout whose runs and results live in `dir` (configs are the workspace's).
fn layout(dir: &Path) -> Layout {
    Layout {
        root: workspace_root(),
        runs: dir.join("runs"),
        results: dir.join("results"),
    }
}

fn build(
    dir: &Path,
    targets: Vec<&'static TargetDef>,
    force: bool,
    o: &[(ModelId, String)],
) -> Plan {
    Plan::build(
        preset::cpu(),
        &[1],
        targets,
        &layout(dir),
        &PlanOptions {
            force,
            overrides: o,
        },
    )
    .unwrap()
}

fn by(name: &str) -> &'static TargetDef {
    targets::by_name(name).unwrap()
}

#[test]
fn ood_tables_share_one_evaluation_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let plan = build(
        dir.path(),
        vec![by("table2"), by("table3"), by("table7")],
        false,
        &[],
    );
    assert_eq!(plan.jobs.len(), 2, "one jem eval each for jem and baseline");
    for j in &plan.jobs {
        assert_eq!(j.targets, ["table2", "table3", "table7"]);
        assert!(!j.cached);
    }
    assert_eq!(plan.runs.len(), 2);
    // The eval command reads the model's run directory and writes into the job's own one.
    let jem = plan.runs.iter().find(|r| r.id == ModelId::Jem).unwrap();
    let argv = &plan.jobs[0].argv;
    assert_eq!(argv[0], "eval");
    assert!(argv.contains(&jem.dir.display().to_string()), "{argv:?}");
    assert_eq!(argv[argv.len() - 2], "--out");
    assert!(argv.contains(&"mnist-5k,uniform,constant,interp".to_string()));
}

#[test]
fn a_changed_config_value_trains_a_new_model_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let a = build(dir.path(), vec![by("fig4")], false, &[]);
    let o = [(ModelId::BaselineConverged, "train.epochs=40".to_string())];
    let b = build(dir.path(), vec![by("fig4")], false, &o);
    let dir_of = |p: &Plan, id| p.runs.iter().find(|r| r.id == id).unwrap().dir.clone();
    assert_ne!(
        dir_of(&a, ModelId::BaselineConverged),
        dir_of(&b, ModelId::BaselineConverged)
    );
    assert_eq!(dir_of(&a, ModelId::Jem), dir_of(&b, ModelId::Jem));
    // The override reaches the train command, after the model's own (so it wins).
    let run = b
        .runs
        .iter()
        .find(|r| r.id == ModelId::BaselineConverged)
        .unwrap();
    let args = run.train_args();
    let at = args.iter().position(|s| s == "train.epochs=40").unwrap();
    assert!(
        args.iter().position(|s| s == "train.epochs=20").unwrap() < at,
        "{args:?}"
    );
    // The job on the changed model changes with it; the job on JEM does not.
    let job_dirs = |p: &Plan| -> Vec<_> { p.jobs.iter().map(|j| j.dir.clone()).collect() };
    let (ja, jb) = (job_dirs(&a), job_dirs(&b));
    assert_eq!(ja[0], jb[0]);
    assert_ne!(ja[1], jb[1]);
}

#[test]
fn model_and_job_status_follow_the_directories() {
    let dir = tempfile::tempdir().unwrap();
    let t = vec![by("table3")];
    let plan = build(dir.path(), t.clone(), false, &[]);
    let jem = plan
        .runs
        .iter()
        .find(|r| r.id == ModelId::Jem)
        .unwrap()
        .dir
        .clone();
    let base = plan
        .runs
        .iter()
        .find(|r| r.id == ModelId::Baseline)
        .unwrap()
        .dir
        .clone();
    std::fs::create_dir_all(&jem).unwrap();
    std::fs::create_dir_all(&base).unwrap();
    // JEM: interrupted (stopped summary and a checkpoint): resumed. Baseline: finished: cached.
    let mut stopped = testkit::summary(ModelId::Jem, 0.5);
    stopped.stop_reason = StopReason::Stopped;
    write_json(&jem.join(files::TRAIN_SUMMARY), &stopped).unwrap();
    std::fs::write(jem.join(files::LAST_CHECKPOINT), b"ckpt").unwrap();
    write_json(
        &base.join(files::TRAIN_SUMMARY),
        &testkit::summary(ModelId::Baseline, 0.9),
    )
    .unwrap();
    let plan = build(dir.path(), t.clone(), false, &[]);
    let status = |p: &Plan, id| p.runs.iter().find(|r| r.id == id).unwrap().status;
    assert_eq!(status(&plan, ModelId::Jem), ModelStatus::Resume);
    assert_eq!(status(&plan, ModelId::Baseline), ModelStatus::Cached);
    let resume = plan
        .runs
        .iter()
        .find(|r| r.id == ModelId::Jem)
        .unwrap()
        .train_args();
    assert_eq!(resume[..2], ["train".to_string(), "--resume".to_string()]);
    // The baseline's evaluation, once written, is cached; JEM's is not while JEM trains.
    for j in &plan.jobs {
        std::fs::create_dir_all(&j.dir).unwrap();
        std::fs::write(j.dir.join(files::OOD), "[]").unwrap();
    }
    let plan = build(dir.path(), t.clone(), false, &[]);
    let cached: Vec<bool> = plan.jobs.iter().map(|j| j.cached).collect();
    assert_eq!(cached, [false, true]);
    // --force retrains and reruns everything.
    let plan = build(dir.path(), t, true, &[]);
    assert!(plan.runs.iter().all(|r| r.status == ModelStatus::Train));
    assert!(plan.jobs.iter().all(|j| !j.cached));
}

#[test]
fn every_target_plans_on_both_presets_with_unique_keys() {
    let dir = tempfile::tempdir().unwrap();
    for p in [preset::cpu(), preset::paper()] {
        let name = p.name;
        let plan = Plan::build(
            p,
            &[1, 2],
            TARGETS.iter().collect(),
            &layout(dir.path()),
            &PlanOptions {
                force: false,
                overrides: &[],
            },
        )
        .unwrap();
        for t in &TARGETS {
            let keys: Vec<_> = plan.job_dirs.keys().filter(|(n, _)| *n == t.name).collect();
            assert!(!keys.is_empty(), "{name}: {} runs no command", t.name);
        }
        // Attacks and sample figures use the first seed only.
        let attack_seeds: Vec<bool> = plan
            .jobs
            .iter()
            .filter(|j| j.job.subcommand == "attack")
            .map(|j| j.job.models().iter().all(|(_, s)| *s == 1))
            .collect();
        assert!(attack_seeds.iter().all(|&b| b));
        // A job reading another's file is planned after it.
        let ex = plan
            .jobs
            .iter()
            .position(|j| j.job.key == "extremes-samples")
            .unwrap();
        let sample = plan
            .jobs
            .iter()
            .position(|j| j.job.key == "sample-unconditional")
            .unwrap();
        assert!(sample < ex);
    }
    assert!(!dir.path().join("runs").exists(), "planning writes nothing");
}

/// A model's config file with its overrides applied, as the plan hashes it.
fn resolved(spec: &crate::reproduce::models::ModelSpec) -> toml::Table {
    let path = workspace_root().join(spec.config);
    let text = std::fs::read_to_string(&path).unwrap();
    crate::reproduce::cache::resolve(&text, &path, &spec.overrides).unwrap()
}

/// A TOML array of integers.
fn integers(v: &toml::Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_integer().unwrap())
        .collect()
}

/// Fig 4's converged baseline trains all its epochs: the cpu file's JEM schedule (its iteration
/// cap and its decay at an iteration) would end or decay it early, as it once did (3700
/// iterations, 2 epochs).
#[test]
fn the_cpu_converged_baseline_trains_its_epochs_on_an_epoch_schedule() {
    let spec = preset::cpu()
        .model(ModelId::BaselineConverged, &[])
        .unwrap();
    let doc = resolved(&spec);
    let t = &doc["train"];
    let d = &doc["data"];
    let epochs = t["epochs"].as_integer().unwrap();
    assert_eq!(
        epochs as usize,
        crate::reproduce::models::CPU_CONVERGED_BASELINE_EPOCHS
    );
    assert_eq!(t["mode"].as_str(), Some("baseline"));
    // Fashion-MNIST's 60000 training images less the validation split, in batches.
    let per_epoch =
        (60000 - d["n_valid"].as_integer().unwrap()) / d["batch_size"].as_integer().unwrap();
    assert!(
        t["max_iterations"].as_integer().unwrap() >= epochs * per_epoch,
        "{t:?}"
    );
    assert_eq!(t["decay_iterations"].as_array().map(Vec::len), Some(0));
    assert_eq!(integers(&t["decay_epochs"]), [epochs / 2, epochs * 3 / 4]);
    assert!(t["max_minutes"].as_float().unwrap() >= 10000.0);
}

#[test]
fn the_paper_preset_baseline_is_batch_norm_sgd() {
    let spec = preset::paper().model(ModelId::Baseline, &[]).unwrap();
    let doc = resolved(&spec);
    assert_eq!(doc["model"]["norm"].as_str(), Some("batch"));
    assert_eq!(doc["model"]["depth"].as_integer(), Some(28));
    assert_eq!(doc["model"]["widen_factor"].as_integer(), Some(10));
    assert_eq!(doc["train"]["mode"].as_str(), Some("baseline"));
    assert_eq!(doc["train"]["optimizer"].as_str(), Some("sgd"));
    assert_eq!(doc["train"]["lr"].as_float(), Some(0.1));
    assert_eq!(doc["train"]["momentum"].as_float(), Some(0.9));
    assert_eq!(doc["train"]["weight_decay"].as_float(), Some(5e-4));
    assert_eq!(doc["train"]["decay_rate"].as_float(), Some(0.2));
    assert_eq!(integers(&doc["train"]["decay_epochs"]), [60, 120, 160]);
    assert_eq!(doc["train"]["epochs"].as_integer(), Some(200));
    // The no-norm classifier is the second, labelled row.
    let p = preset::paper();
    assert_eq!(p.baselines, [ModelId::Baseline, ModelId::BaselineNoNorm]);
    let second = p.model(ModelId::BaselineNoNorm, &[]).unwrap();
    assert!(second.label.contains("no norm"), "{}", second.label);
}

fn args(dir: &Path, target: &str, preset: &str) -> ReproduceArgs {
    ReproduceArgs {
        table: Some(target.into()),
        preset: preset.into(),
        device: "cpu".into(),
        out: Some(dir.join("runs")),
        results: Some(dir.join("results")),
        seeds: vec![1],
        list: false,
        dry_run: true,
        force: false,
        set: if preset == "cpu" {
            vec!["baseline-converged:train.epochs=7".into()]
        } else {
            Vec::new()
        },
        jobs: None,
        inception: None,
    }
}

#[test]
fn dry_run_runs_nothing_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    crate::reproduce::run(&args(dir.path(), "all", "cpu")).unwrap();
    // Not even on the paper preset, which lacks a GPU and its data here.
    crate::reproduce::run(&args(dir.path(), "table3", "paper")).unwrap();
    assert!(!dir.path().join("runs").exists());
    assert!(!dir.path().join("results").exists());
}

#[test]
fn bad_targets_and_overrides_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(dir.path(), "table4", "cpu");
    let err = crate::reproduce::run(&a).unwrap_err().to_string();
    assert!(
        err.contains("unknown target `table4`") && err.contains("fig17"),
        "{err}"
    );
    a.table = Some("table3".into());
    a.set = vec!["nomodel:train.lr=1".into()];
    let err = crate::reproduce::run(&a).unwrap_err().to_string();
    assert!(err.contains("unknown model `nomodel`"), "{err}");
    a.set = vec!["jem-svhn:train.lr=1".into()];
    let err = crate::reproduce::run(&a).unwrap_err().to_string();
    assert!(err.contains("not part of the `cpu` preset"), "{err}");
}

#[test]
fn list_names_every_target_and_the_converged_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let two = crate::reproduce::exec::Workers::new(None, "cpu", 2).unwrap();
    let text = crate::reproduce::list(&preset::cpu(), &layout(dir.path()), &[1], two).unwrap();
    for t in &TARGETS {
        assert!(
            text.contains(&format!("\n{:<8} {}", t.name, t.title)),
            "{}: {text}",
            t.name
        );
    }
    assert!(
        text.contains("converged baseline trains for 20 epochs, chosen on its test ECE"),
        "{text}"
    );
    assert!(text.contains("baseline-converged (~18 min)"), "{text}");
    // Two at a time: less than the sum, more than half of it.
    let number = |after: &str, before: &str| -> f64 {
        let start = text
            .find(after)
            .unwrap_or_else(|| panic!("{after}: {text}"))
            + after.len();
        let end = start + text[start..].find(before).unwrap();
        text[start..end].trim().parse().unwrap()
    };
    let alone = number("commands, about", "min one at a time");
    let parallel = number("`all` about", "min.");
    assert!(
        parallel < alone && parallel > alone / 2.0,
        "{alone} {parallel}"
    );
}

/// The command line of `target`'s planned job `key`, space-joined.
fn command_of(plan: &Plan, target: &str, key: &str) -> String {
    plan.jobs
        .iter()
        .find(|j| j.job.key == key && j.targets.contains(&target))
        .unwrap_or_else(|| panic!("{target} plans no job `{key}`"))
        .argv
        .join(" ")
}

/// Fig 14's gradient-free attacks run on the preset's smaller input count with its boundary
/// budget, while its PGD comparison is Fig 5's own job (the whole N).
#[test]
fn fig14_runs_the_gradient_free_attacks_on_fewer_inputs_than_pgd() {
    let dir = tempfile::tempdir().unwrap();
    let plan = build(dir.path(), vec![by("fig14")], false, &[]);
    let boundary = command_of(&plan, "fig14", "boundary");
    assert!(
        boundary.contains("--n 16 ")
            && boundary.contains("--boundary-iterations 200 --boundary-candidates 10"),
        "{boundary}"
    );
    assert!(command_of(&plan, "fig14", "pointwise").contains("--n 16 "));
    assert!(command_of(&plan, "fig14", "pgd-l2").contains("--n 32 "));
}

/// Fig 16's 5-chain curve is Fig 5's PGD L∞ job (run once for both); its 10-chain job attacks
/// JEM-1 alone. Every PGD job starts its ε search at foolbox 2.4's ε = 0.3.
#[test]
fn fig16_shares_fig5s_pgd_linf_job_for_its_five_chains() {
    let dir = tempfile::tempdir().unwrap();
    let plan = build(dir.path(), vec![by("fig5"), by("fig16")], false, &[]);
    let five = command_of(&plan, "fig16", "pgd-linf");
    assert_eq!(five, command_of(&plan, "fig5", "pgd-linf"));
    let shared: Vec<_> = plan
        .jobs
        .iter()
        .filter(|j| j.argv.join(" ") == five)
        .collect();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].targets, vec!["fig5", "fig16"]);
    let ten = plan
        .jobs
        .iter()
        .find(|j| j.targets == vec!["fig16"])
        .expect("fig16's 10-chain job")
        .argv
        .join(" ");
    assert!(
        ten.contains("--eot 10 ") && ten.contains("--refine-steps 1 "),
        "{ten}"
    );
    assert!(!ten.contains("baseline="), "{ten}");
    for cmd in [&five, &ten] {
        assert!(cmd.contains("--initial-eps-fraction 0.3"), "{cmd}");
    }
}
