//! The full-disk test: a tiny run whose second `last.ckpt` write fails half-way with ENOSPC
//! (injected through a [`jem_train::fault`] hook, as a full disk would fail it) stops with an
//! error naming the file and the operating system's "No space left on device"; the last good
//! `last.ckpt` is left untouched, no temporary file is left behind, the checkpoint still loads,
//! and resuming from it ends bit-identical to the run that never failed.

mod common;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use common::{assert_same_run, data, tiny_config};
use jem_train::checkpoint::{read_checkpoint, TEMP_PREFIX};
use jem_train::fault::{self, Site};
use jem_train::{files, resume_with_data, train_with_data, Mode, NoopObserver, RunConfig};
use tch::Device;

/// 2 epochs of 12 iterations, a checkpoint every 5.
fn config() -> RunConfig {
    let mut c = tiny_config(Mode::Jem);
    c.train.epochs = 2;
    c.train.checkpoint_every = 5;
    c
}

/// The io error anywhere in `e`'s source chain.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

#[test]
fn enospc_in_a_checkpoint_write_stops_the_run_and_keeps_the_last_good_checkpoint() {
    tch::set_num_threads(1);
    let whole = tempfile::tempdir().unwrap();
    train_with_data(
        config(),
        data(),
        whole.path(),
        Device::Cpu,
        &mut NoopObserver,
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    // The bytes of last.ckpt on disk when the failing write starts (the last good one).
    let before: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let writes = Rc::new(RefCell::new(0u32));
    {
        let (before, writes) = (before.clone(), writes.clone());
        fault::set_hook(Some(Box::new(move |site: Site, path: &Path| {
            if site != Site::TempHalfWritten || path.file_name().is_none_or(|n| *n != *files::LAST)
            {
                return Ok(());
            }
            *writes.borrow_mut() += 1;
            if *writes.borrow() < 2 {
                return Ok(());
            }
            *before.borrow_mut() = std::fs::read(path).ok();
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        })));
    }
    let err = train_with_data(config(), data(), dir.path(), Device::Cpu, &mut NoopObserver)
        .expect_err("a run whose checkpoint write hits a full disk must fail");
    fault::set_hook(None);
    assert_eq!(
        *writes.borrow(),
        2,
        "the run went on writing after the failure"
    );

    let message = err.to_string();
    assert!(
        message.contains(files::LAST) && message.contains("No space left"),
        "the error names neither the file nor the cause: {message}"
    );
    assert_eq!(
        io_kind(&err),
        Some(std::io::ErrorKind::StorageFull),
        "{message}"
    );

    let last = dir.path().join(files::LAST);
    let good = before
        .borrow()
        .clone()
        .expect("no last.ckpt before the failing write");
    assert!(
        std::fs::read(&last).unwrap() == good,
        "the failed write changed last.ckpt"
    );
    let temps: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TEMP_PREFIX))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    let ck = read_checkpoint(&last).unwrap();
    assert!(!ck.tensors.is_empty());

    resume_with_data(dir.path(), data(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_same_run(whole.path(), dir.path());
}
