//! The restore's `expect` checks: what `plan` says will be checked, and the
//! checks themselves, with `GET` requests only (also in `verify`).

use backout_sdk::StepError;

use crate::api::Client;
use crate::config::Expect;

use crate::ops::fail;

pub(in crate::ops) fn describe_expect(expect: &Expect) -> String {
    let mut parts = vec![format!("status is {}", expect.status.join(" or "))];
    if expect.readyz {
        parts.push("GET /readyz answers 200".to_owned());
    }
    if let Some(p) = expect.points {
        parts.push(format!(
            "exactly {p}{} points (an exact count, taken by run right after the recovery)",
            expect.tolerance.describe()
        ));
    }
    parts.join(", ")
}

/// The `expect` checks, with `GET` requests only (the host allows no other
/// in `verify`): the collection's status and `/readyz` now, and the exact
/// count `run` took right after the recovery (`POST …/points/count` is a
/// POST). Each problem in words; request failures are errors.
pub(in crate::ops) fn check_expect(
    client: &mut Client<'_>,
    expect: &Expect,
    counted: Option<u64>,
) -> Result<Vec<String>, StepError> {
    let mut problems = Vec::new();
    let c = client.collection.clone();
    let info = match client.collection_info().map_err(|e| fail(client, e, ""))? {
        None => {
            problems.push(format!("collection `{c}` does not exist"));
            return Ok(problems);
        }
        Some(info) => info,
    };
    if !expect.status.contains(&info.status) {
        problems.push(format!(
            "collection `{c}` has status `{}`, expected {}",
            info.status,
            expect.status.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or ")
        ));
    }
    if expect.readyz {
        let (status, text) = client.readyz().map_err(|e| fail(client, e, ""))?;
        if status != 200 {
            problems.push(format!("GET /readyz answered {status}: {text}"));
        }
    }
    if let Some(expected) = expect.points {
        let allowed = expect.tolerance.allowed(expected);
        match counted {
            Some(count) if count.abs_diff(expected) > allowed => problems.push(format!(
                "collection `{c}` had {count} points right after the restore (exact count), expected {expected}{}",
                expect.tolerance.describe()
            )),
            Some(_) => {}
            None => problems.push(format!(
                "the run could not count the points of `{c}` after the restore, so `expect.points` cannot be checked"
            )),
        }
        if let Some(now) = info.points_count
            && now.abs_diff(expected) > allowed
        {
            client.env().warn(format!(
                "collection `{c}` reports about {now} points now (Qdrant's approximate count); expected {expected}{}",
                expect.tolerance.describe()
            ));
        }
    }
    Ok(problems)
}
