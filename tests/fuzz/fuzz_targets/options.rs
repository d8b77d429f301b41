//! Every parser of user input — length options, thresholds, SLOs, fault specs, key=value lists,
//! URLs — returns a value or a message on arbitrary text, never panics.
#![no_main]

use inference_benchmarker::cli::parse_key_values;
use inference_benchmarker::config::Endpoint;
use inference_benchmarker::offline::thresholds::Threshold;
use inference_benchmarker::request::openai::endpoint_url;
use inference_benchmarker::sim::fault::{Fault, FaultRule};
use inference_benchmarker::workload::options::TokenizeOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    if let Ok(o) = s.parse::<TokenizeOptions>() {
        // What parses prints back to something that parses the same.
        assert_eq!(o.to_string().parse::<TokenizeOptions>().ok(), Some(o));
    }
    let _ = s.parse::<Threshold>();
    let _ = s.parse::<sinks::slo::Slo>();
    if let Ok(f) = s.parse::<Fault>() {
        assert_eq!(f.to_string().parse::<Fault>(), Ok(f));
    }
    let _ = s.parse::<FaultRule>();
    let _ = parse_key_values(s);
    let _ = endpoint_url(s, Endpoint::Chat);
});
