//! `backout runs` and `backout show`: reading journals back.

use std::path::{Path, PathBuf};

use anyhow::Context;
use backout::history::RunRecord;
use backout::journal::{self, event::Session};
use backout::report::html::{self, ShowView, file_url};
use backout::report::run as run_report;

use super::{Ctx, print_json};
use crate::Exit;
use crate::args::{Output, RunsArgs, ShowArgs};
use crate::output::{self, errln, out, outln};

/// `backout runs`.
pub fn runs(ctx: &Ctx, args: &RunsArgs) -> Exit {
    let limit = if args.limit == 0 { usize::MAX } else { args.limit };
    let found = recent_runs(&ctx.state_dir, limit);
    let rows: Vec<run_report::RunRow<'_>> =
        found.iter().map(|(record, journal)| run_report::RunRow::new(record, journal)).collect();
    match ctx.output {
        Output::Json => print_json(&serde_json::json!({ "runs": rows })),
        Output::Text if rows.is_empty() => {
            outln!("no runs in `{}`", journal::runs_dir(&ctx.state_dir).display());
        }
        Output::Text => out!("{}", run_report::runs_table(&rows)),
    }
    Exit::Success
}

/// `backout show RUN`.
pub fn show(ctx: &Ctx, args: &ShowArgs) -> Exit {
    let (dir, record) = match load_run(ctx, &args.run) {
        Ok(found) => found,
        Err(e) => {
            output::error(&e, Some("`backout runs` lists the runs this state directory holds"));
            return Exit::Invalid;
        }
    };
    let journal = dir.join(journal::FILE_NAME);
    let view = ShowView::new(&record, &journal);
    if let Some(file) = &args.html {
        let written = html::render(&view).map_err(anyhow::Error::from).and_then(|page| write_report(file, &page));
        match written {
            Ok(None) => return Exit::Success,
            Ok(Some(path)) if ctx.output == Output::Text => {
                outln!("Report of run {}: {}", record.id, file_url(&path));
                return Exit::Success;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                output::error(&e, Some("`--html` needs a file in a directory that exists and that you may write to"));
                return Exit::Invalid;
            }
        }
    }
    match ctx.output {
        // The report's data: `run` as `run --output json` has it, and what
        // the HTML page adds under `report`.
        Output::Json => match serde_json::to_value(&view) {
            Ok(value) => print_json(&value),
            Err(e) => {
                output::error(&anyhow::Error::from(e).context("failed to serialise the run"), None);
                return Exit::Invalid;
            }
        },
        Output::Text => out!("{}", run_report::show(&record, &journal)),
    }
    Exit::Success
}

/// Writes the report to `file` (`-`: stdout) through a temporary file beside
/// it and a rename, so a reader never sees half a page. Returns the file's
/// absolute path, or `None` for stdout.
fn write_report(file: &Path, page: &str) -> anyhow::Result<Option<PathBuf>> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    if file == Path::new("-") {
        out!("{page}");
        return Ok(None);
    }
    let failed = || format!("failed to write `{}`", file.display());
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // Readable like any file the operator makes (0666 less the umask): the
    // report holds what `backout show` prints, secrets already masked.
    let mut temp = tempfile::Builder::new()
        .prefix(".backout-report-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(failed)?;
    temp.write_all(page.as_bytes()).with_context(failed)?;
    temp.as_file().sync_all().with_context(failed)?;
    temp.persist(file).map_err(|e| e.error).with_context(failed)?;
    Ok(Some(std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf())))
}

/// The newest `limit` runs that can be read, newest first, with their
/// journal paths. Unreadable journals are reported on stderr and skipped.
pub fn recent_runs(state_dir: &Path, limit: usize) -> Vec<(RunRecord, PathBuf)> {
    let mut ids = run_ids(state_dir);
    ids.reverse();
    let mut found = Vec::new();
    for id in ids.into_iter().take(limit) {
        let path = journal::runs_dir(state_dir).join(&id).join(journal::FILE_NAME);
        match read_record(&path) {
            Ok(record) => found.push((record, path)),
            Err(e) => errln!("warning: skipping run `{id}`: {e:#}"),
        }
    }
    found
}

/// Run directories, oldest first (ids sort by start time).
fn run_ids(state_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(journal::runs_dir(state_dir))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join(journal::FILE_NAME).is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Reads and folds one journal.
pub fn read_record(path: &Path) -> anyhow::Result<RunRecord> {
    let contents = journal::read(path)?;
    RunRecord::from_records(&contents.records, Session::is_alive)
        .with_context(|| format!("journal `{}` does not start with `run-started`", path.display()))
}

/// Finds a run by id, unique id prefix, or `last`, and reads it.
pub fn load_run(ctx: &Ctx, spec: &str) -> anyhow::Result<(PathBuf, RunRecord)> {
    let ids = run_ids(&ctx.state_dir);
    let runs = journal::runs_dir(&ctx.state_dir);
    let id = if spec == "last" {
        ids.last().cloned().with_context(|| format!("there are no runs in `{}`", runs.display()))?
    } else if ids.iter().any(|i| i == spec) {
        spec.to_string()
    } else {
        let matches: Vec<&String> = ids.iter().filter(|i| i.starts_with(spec)).collect();
        match matches.as_slice() {
            [one] => (*one).clone(),
            [] => anyhow::bail!("no run `{spec}` in `{}`", runs.display()),
            many => anyhow::bail!(
                "`{spec}` matches {} runs: {}",
                many.len(),
                many.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
            ),
        }
    };
    let dir = runs.join(&id);
    let record = read_record(&dir.join(journal::FILE_NAME))?;
    Ok((dir, record))
}
