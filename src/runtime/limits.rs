//! Process limits: every concurrent stream holds a socket, so the open-file soft limit (often
//! 1024) silently caps the concurrency a run can reach. Raise it to the hard limit at start and
//! say so when `--max-vus` still cannot fit.

/// Descriptors a run uses besides its streams (files, the runtime, sinks, a margin).
const SPARE_DESCRIPTORS: u64 = 128;

/// The soft and hard `RLIMIT_NOFILE` after raising the soft one to the hard one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the open-file soft limit to the hard limit.
pub fn raise_open_files() -> Result<OpenFiles, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(OpenFiles {
        before,
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// The concurrency that fits under the soft limit with descriptors to spare.
fn fitting(limits: OpenFiles) -> u64 {
    limits.soft.saturating_sub(SPARE_DESCRIPTORS).max(1)
}

/// A warning when `max_vus` concurrent streams cannot fit under the soft limit.
pub fn fit_warning(limits: OpenFiles, max_vus: u64) -> Option<String> {
    let needed = max_vus.saturating_add(SPARE_DESCRIPTORS);
    (needed > limits.soft).then(|| {
        format!(
            "--max-vus {max_vus} needs about {needed} open files but the limit is {} (hard limit {}): \
             concurrency is capped at {} (arrivals beyond it are dropped and counted); raise the \
             limit with `ulimit -n` (or the container's nofile limit)",
            limits.soft,
            limits.hard,
            fitting(limits)
        )
    })
}

/// At the start of a run: raise the limit, log what was done, and return the concurrency that
/// fits (`max_vus`, or less with a warning). Streams beyond the limit would fail to connect and
/// could leave no descriptor to write the results with: what was measured would be lost.
pub fn prepare(max_vus: u64) -> u64 {
    match raise_open_files() {
        Ok(l) => {
            if l.soft > l.before {
                log::info!("open-file limit raised from {} to {}", l.before, l.soft);
            }
            match fit_warning(l, max_vus) {
                Some(w) => {
                    eprintln!("warning: {w}");
                    fitting(l)
                }
                None => max_vus,
            }
        }
        Err(e) => {
            log::warn!("cannot check the open-file limit: {e}");
            max_vus
        }
    }
}

/// mimalloc's `arena_eager_commit`: its arenas (1 GiB reservations) are committed page by page as
/// they are used, not all at once: 10,000 concurrent streams held 600 MB resident with eager
/// commit, 311 MB without. Called first thing in `main`, before the allocator reserves an arena.
pub fn commit_memory_on_demand() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: sets one of mimalloc's integer options; no pointers involved.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

/// Hands the heap pages freed after preparing the workload (parsed dataset files, tokenizer
/// batches: often more than the run itself keeps) back to the system, so the run's resident
/// memory is what it uses. mimalloc keeps freed pages per thread, so every thread that
/// tokenized (rayon's pool) collects its own.
pub fn release_free_memory() {
    // SAFETY: mi_collect takes no pointers; it only returns the calling thread's unused pages.
    let collect = || unsafe { libmimalloc_sys::mi_collect(true) };
    rayon::broadcast(|_| collect());
    collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let l = raise_open_files().unwrap();
        assert_eq!(l.soft, l.hard);
        assert!(l.soft >= l.before);
    }

    #[test]
    fn a_run_that_cannot_fit_is_told_why() {
        let l = OpenFiles {
            before: 1024,
            soft: 1024,
            hard: 1024,
        };
        assert_eq!(fit_warning(l, 512), None);
        let w = fit_warning(l, 5000).unwrap();
        assert!(
            w.contains("--max-vus 5000") && w.contains("limit is 1024"),
            "{w}"
        );
        assert!(w.contains("capped at 896"), "{w}");
        assert_eq!(fitting(l), 896);
    }
}
