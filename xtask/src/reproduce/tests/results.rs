use crate::reproduce::claims::{Claim, Verdict};
use crate::reproduce::output;
use crate::reproduce::preset;
use crate::reproduce::targets::{self, Assembled, Image};

fn assembled(png: std::path::PathBuf) -> Assembled {
    Assembled {
        body: "| a | b |\n|---|---|\n| 1 | 2 |\n".into(),
        claims: vec![
            Claim {
                text: "JEM's ECE is lower than the baseline's".into(),
                verdict: Verdict::Supported,
                evidence: "JEM 1.20% < baseline 3.40%".into(),
            },
            Claim::not_measurable("IS beats IGEBM's", "classifier features"),
        ],
        numbers: serde_json::json!({ "ece": 0.012 }),
        images: vec![Image {
            src: png,
            name: "reliability_jem.png".into(),
            caption: "JEM: reliability".into(),
        }],
        notes: vec!["a caveat".into()],
    }
}

#[test]
fn a_target_folder_has_readme_json_and_pngs_and_the_index_lists_its_claims() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("src.png");
    std::fs::write(&png, b"png bytes").unwrap();
    let results = dir.path().join("results");
    let p = preset::cpu();
    let fig4 = targets::by_name("fig4").unwrap();
    output::write_target(&results, &p, &[1, 2], fig4, &assembled(png)).unwrap();
    let readme = std::fs::read_to_string(results.join("fig4/README.md")).unwrap();
    assert!(readme.starts_with(&format!("# {}", fig4.title)), "{readme}");
    assert!(readme.contains("Seeds: 1, 2."), "{readme}");
    assert!(readme.contains(
        "- ✅ **supported**: JEM's ECE is lower than the baseline's — JEM 1.20% < baseline 3.40%"
    ));
    assert!(
        readme.contains("![JEM: reliability](reliability_jem.png)"),
        "{readme}"
    );
    assert_eq!(
        std::fs::read(results.join("fig4/reliability_jem.png")).unwrap(),
        b"png bytes"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("fig4/results.json")).unwrap())
            .unwrap();
    assert_eq!(json["numbers"]["ece"], 0.012);
    assert_eq!(json["claims"][1]["verdict"], "not_measurable");
    let table5 = targets::by_name("table5").unwrap();
    output::write_not_run(
        &results,
        &p,
        &[1],
        table5,
        "this jem lacks `jem generative --from-buffer`",
    )
    .unwrap();
    output::write_index(&results, &p).unwrap();
    let index = std::fs::read_to_string(results.join("README.md")).unwrap();
    assert!(index.contains("## [fig4](fig4/README.md)"), "{index}");
    assert!(
        index.contains("JEM's ECE is lower than the baseline's"),
        "{index}"
    );
    assert!(
        index.contains("Not run: this jem lacks `jem generative --from-buffer`"),
        "{index}"
    );
    assert!(
        index.contains("In all: 1 supported, 0 not supported, 1 not measurable"),
        "{index}"
    );
    // fig4 comes before table5 only if the paper's order says so: table5 is listed first.
    assert!(index.find("[table5]").unwrap() < index.find("[fig4]").unwrap());
}

#[test]
fn a_png_the_command_did_not_write_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/reliability.png");
    let err = output::write_target(
        &dir.path().join("results"),
        &preset::cpu(),
        &[1],
        targets::by_name("fig4").unwrap(),
        &assembled(missing),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("nope/reliability.png"), "{err}");
}
