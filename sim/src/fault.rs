//! Fault injection (pure): what can go wrong with one request, chosen by `--fault SPEC[@SHARE]`
//! flags (each request draws against the shares, first match wins) or by the request's own
//! `x-sim-fault: SPEC` header.
//!
//! | SPEC | what the server does | what a client should report |
//! |---|---|---|
//! | `status=CODE` | answers CODE (4xx/5xx) with an OpenAI error body; 429 adds `Retry-After: 1` | `rate_limited`, `http_4xx`, `http_5xx` |
//! | `drop` | sends 200 and its headers, then aborts the connection | `stream_broken` |
//! | `drop-mid-stream=N` | aborts the connection after N tokens | `stream_broken` |
//! | `stall=N:MS` | stops for MS ms after N tokens (N = 0: before the first) | a timeout, if MS exceeds it |
//! | `slow-drip` | sends every event in three pieces, 2 ms apart | `ok` |
//! | `bad-json=N` | after N tokens, an event whose data is not JSON | `protocol_error` |
//! | `non-utf8=N` | after N tokens, an event with bytes that are not UTF-8 | `protocol_error` |
//! | `huge-line=N` | after N tokens, a single 10 MB line | `protocol_error` |
//! | `error-event=N` | after N tokens, `data: {"error": {...}}` | `protocol_error` |
//! | `missing-data=N` | after N tokens, one event without its `data:` field name (legal SSE: an unknown field, ignored) | `ok` (one chunk fewer than `usage`) |
//! | `wrong-content-type` | 200 with the non-streaming JSON body | `protocol_error` |
//! | `empty-body` | 200 `text/event-stream` with no body at all | `stream_broken` |
//! | `open-after-done` | never ends the body after `[DONE]` (as a buggy proxy may) | `ok`, at once |

use std::fmt;

/// One fault, as applied to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    Drop,
    DropMidStream(u32),
    Stall { after: u32, ms: u64 },
    SlowDrip,
    BadJson(u32),
    NonUtf8(u32),
    HugeLine(u32),
    ErrorEvent(u32),
    MissingData(u32),
    WrongContentType,
    EmptyBody,
    OpenAfterDone,
}

/// Size of the `huge-line` event's line.
pub const HUGE_LINE_BYTES: usize = 10 << 20;

impl Fault {
    /// After how many tokens a mid-stream fault strikes.
    pub fn after(self) -> Option<u32> {
        match self {
            Fault::DropMidStream(n)
            | Fault::BadJson(n)
            | Fault::NonUtf8(n)
            | Fault::HugeLine(n)
            | Fault::ErrorEvent(n)
            | Fault::MissingData(n) => Some(n),
            Fault::Stall { after, .. } => Some(after),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status(c) => write!(f, "status={c}"),
            Fault::Drop => write!(f, "drop"),
            Fault::DropMidStream(n) => write!(f, "drop-mid-stream={n}"),
            Fault::Stall { after, ms } => write!(f, "stall={after}:{ms}"),
            Fault::SlowDrip => write!(f, "slow-drip"),
            Fault::BadJson(n) => write!(f, "bad-json={n}"),
            Fault::NonUtf8(n) => write!(f, "non-utf8={n}"),
            Fault::HugeLine(n) => write!(f, "huge-line={n}"),
            Fault::ErrorEvent(n) => write!(f, "error-event={n}"),
            Fault::MissingData(n) => write!(f, "missing-data={n}"),
            Fault::WrongContentType => write!(f, "wrong-content-type"),
            Fault::EmptyBody => write!(f, "empty-body"),
            Fault::OpenAfterDone => write!(f, "open-after-done"),
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(spec: &str) -> Result<Fault, String> {
        let spec = spec.trim();
        let (name, arg) = match spec.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (spec, None),
        };
        let count = |what: &str| -> Result<u32, String> {
            arg.ok_or_else(|| format!("fault '{name}' needs ={what}"))?
                .parse()
                .map_err(|_| format!("fault '{spec}': {what} must be a whole number"))
        };
        let fault = match name {
            "status" => {
                let code: u16 = count("CODE")?
                    .try_into()
                    .map_err(|_| format!("fault '{spec}': not an HTTP status"))?;
                if !(400..=599).contains(&code) {
                    return Err(format!("fault '{spec}': the status must be 4xx or 5xx"));
                }
                Fault::Status(code)
            }
            "drop" => Fault::Drop,
            "drop-mid-stream" => Fault::DropMidStream(count("N")?),
            "stall" => {
                let (n, ms) = arg
                    .and_then(|a| a.split_once(':'))
                    .ok_or_else(|| format!("fault '{spec}': use stall=N:MS"))?;
                Fault::Stall {
                    after: n.trim().parse().map_err(|_| format!("fault '{spec}': N"))?,
                    ms: ms
                        .trim()
                        .parse()
                        .map_err(|_| format!("fault '{spec}': MS"))?,
                }
            }
            "slow-drip" => Fault::SlowDrip,
            "bad-json" => Fault::BadJson(count("N")?),
            "non-utf8" => Fault::NonUtf8(count("N")?),
            "huge-line" => Fault::HugeLine(count("N")?),
            "error-event" => Fault::ErrorEvent(count("N")?),
            "missing-data" => Fault::MissingData(count("N")?),
            "wrong-content-type" => Fault::WrongContentType,
            "empty-body" => Fault::EmptyBody,
            "open-after-done" => Fault::OpenAfterDone,
            _ => {
                return Err(format!(
                    "unknown fault '{name}' (status=CODE, drop, drop-mid-stream=N, stall=N:MS, \
                     slow-drip, bad-json=N, non-utf8=N, huge-line=N, error-event=N, \
                     missing-data=N, wrong-content-type, empty-body, open-after-done)"
                ))
            }
        };
        let takes_arg = !matches!(
            fault,
            Fault::Drop
                | Fault::SlowDrip
                | Fault::WrongContentType
                | Fault::EmptyBody
                | Fault::OpenAfterDone
        );
        if !takes_arg && arg.is_some() {
            return Err(format!("fault '{name}' takes no value"));
        }
        Ok(fault)
    }
}

/// `--fault SPEC[@SHARE]`: the fault and the share of requests it strikes (default all).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultRule {
    pub fault: Fault,
    pub share: f64,
}

impl std::str::FromStr for FaultRule {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultRule, String> {
        let (spec, share) = match s.rsplit_once('@') {
            Some((spec, share)) => {
                let share: f64 = share
                    .trim()
                    .parse()
                    .map_err(|_| format!("--fault '{s}': the share after @ must be a number"))?;
                if !(0.0..=1.0).contains(&share) {
                    return Err(format!("--fault '{s}': the share must be between 0 and 1"));
                }
                (spec, share)
            }
            None => (s, 1.0),
        };
        Ok(FaultRule {
            fault: spec.parse()?,
            share,
        })
    }
}

/// The fault for one request: the header's, else the first rule whose draw (`draw()` in
/// [0, 1), one per rule) falls under its share.
pub fn choose(
    rules: &[FaultRule],
    header: Option<&str>,
    mut draw: impl FnMut() -> f64,
) -> Result<Option<Fault>, String> {
    if let Some(spec) = header {
        return spec.parse().map(Some);
    }
    Ok(rules.iter().find(|r| draw() < r.share).map(|r| r.fault))
}

/// The fault for the benchmarker's pre-flight probe: the header's, else the first rule that
/// strikes every request (share 1). Rules with a smaller share are not drawn for it, so a
/// probe neither shifts a seeded run's draws nor stops a run by bad luck; a server that fails
/// every request fails the probe too.
pub fn for_probe(rules: &[FaultRule], header: Option<&str>) -> Result<Option<Fault>, String> {
    if let Some(spec) = header {
        return spec.parse().map(Some);
    }
    Ok(rules.iter().find(|r| r.share >= 1.0).map(|r| r.fault))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        for spec in [
            "status=503",
            "drop",
            "drop-mid-stream=5",
            "stall=0:3000",
            "slow-drip",
            "bad-json=2",
            "non-utf8=1",
            "huge-line=3",
            "error-event=4",
            "missing-data=2",
            "wrong-content-type",
            "empty-body",
            "open-after-done",
        ] {
            let f: Fault = spec.parse().unwrap();
            assert_eq!(f.to_string(), spec);
        }
    }

    #[test]
    fn bad_specs_are_messages() {
        for (spec, needle) in [
            ("status=200", "4xx or 5xx"),
            ("status", "needs =CODE"),
            ("stall=5", "stall=N:MS"),
            ("drop=3", "takes no value"),
            ("explode", "unknown fault"),
            ("bad-json=x", "whole number"),
        ] {
            let e = spec.parse::<Fault>().unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
        assert!("status=500@2"
            .parse::<FaultRule>()
            .unwrap_err()
            .contains("between 0 and 1"));
    }

    #[test]
    fn rules_draw_in_order_and_headers_win() {
        let rules: Vec<FaultRule> = ["status=500@0.5", "drop@1"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        let mut draws = [0.7, 0.2].into_iter();
        assert_eq!(
            choose(&rules, None, || draws.next().unwrap()),
            Ok(Some(Fault::Drop))
        );
        assert_eq!(choose(&rules, None, || 0.1), Ok(Some(Fault::Status(500))));
        assert_eq!(choose(&[], None, || 0.0), Ok(None));
        assert_eq!(
            choose(&rules, Some("empty-body"), || 0.0),
            Ok(Some(Fault::EmptyBody))
        );
        assert!(choose(&rules, Some("nonsense"), || 0.0).is_err());
        assert_eq!(
            for_probe(&rules, None),
            Ok(Some(Fault::Drop)),
            "the share-1 rule"
        );
        let partial: Vec<FaultRule> = vec!["status=500@0.99".parse().unwrap()];
        assert_eq!(for_probe(&partial, None), Ok(None));
    }
}
