//! The progress bars of preparing the workload: drawn on stderr only when it is a terminal.

/// A bar of `len` items: `{label} [bar] {pos}/{len} {unit} {elapsed}`.
pub(super) fn bar(len: usize, label: &str, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{label} {{bar:40}} {{pos}}/{{len}} {unit} {{elapsed}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
