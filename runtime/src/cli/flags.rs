//! Sizes and durations from the command line and the run configuration, checked before they are
//! converted: a value whose conversion would overflow, or one above what the host can give, is
//! refused with the maximum named, never wrapped into some other limit.

use hyperagent::evolution::config::RunConfig;
use hyperagent::sandbox::EngineSettings;

/// Longest wall-clock limit `build --timeout-secs` takes (a day); the compiler adds it to the
/// current instant.
pub const MAX_BUILD_TIMEOUT_SECS: u64 = 86_400;

/// The largest memory cap the sandbox gives a call, in MiB.
pub fn max_memory_mib() -> u64 {
    EngineSettings::default().max_memory_bytes >> 20
}

/// A memory cap in MiB, as bytes.
pub fn memory_bytes(mib: u64) -> Result<u64, String> {
    let max = max_memory_mib();
    match mib.checked_mul(1 << 20) {
        Some(bytes) if (1..=max).contains(&mib) => Ok(bytes),
        _ => Err(format!("a memory cap of {mib} MiB is refused: the sandbox's maximum is {max} MiB (and the least 1)")),
    }
}

/// `--memory`: MiB on the command line, bytes in the program.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    memory_bytes(text.trim().parse::<u64>().map_err(|e| format!("`{text}` is not a number of MiB: {e}"))?)
}

/// `--timeout-secs`.
pub fn parse_build_timeout(text: &str) -> Result<u64, String> {
    let secs = text.trim().parse::<u64>().map_err(|e| format!("`{text}` is not a number of seconds: {e}"))?;
    if secs == 0 || secs > MAX_BUILD_TIMEOUT_SECS {
        return Err(format!("a build timeout of {secs} s is refused: the maximum is {MAX_BUILD_TIMEOUT_SECS} s"));
    }
    Ok(secs)
}

/// The `iterations_left` of a meta call's `--input`.
pub fn iterations_left(input: &serde_json::Value) -> Result<u32, String> {
    match input.get("iterations_left") {
        None => Ok(0),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("iterations_left must be a whole number up to {}, not {n}", u32::MAX)),
    }
}

/// The sizes in a run configuration that are converted on the way to the sandbox.
pub fn check_run_config(config: &RunConfig) -> Result<(), String> {
    memory_bytes(config.memory_mib).map(drop).map_err(|e| format!("memory_mib: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_caps_that_would_wrap_are_refused_with_the_maximum() {
        assert_eq!(parse_memory("256"), Ok(256 << 20));
        assert_eq!(parse_memory(&max_memory_mib().to_string()), Ok(max_memory_mib() << 20));
        // u64::MAX MiB wraps to a cap near u64::MAX bytes, 2^44 MiB to a cap of 0 bytes.
        for text in ["18446744073709551615", "17592186044416", &(max_memory_mib() + 1).to_string(), "0"] {
            let error = parse_memory(text).unwrap_err();
            assert!(error.contains(&format!("maximum is {} MiB", max_memory_mib())), "{text}: {error}");
        }
        assert!(parse_memory("-1").unwrap_err().contains("not a number of MiB"));
        assert!(parse_memory("18446744073709551616").unwrap_err().contains("not a number of MiB"));
    }

    #[test]
    fn build_timeouts_past_the_maximum_are_refused() {
        assert_eq!(parse_build_timeout("300"), Ok(300));
        let error = parse_build_timeout("18446744073709551615").unwrap_err();
        assert!(error.contains("maximum is 86400 s"), "{error}");
        assert!(parse_build_timeout("0").is_err());
    }

    #[test]
    fn iterations_left_is_never_truncated() {
        assert_eq!(iterations_left(&serde_json::json!({})), Ok(0));
        assert_eq!(iterations_left(&serde_json::json!({"iterations_left": 7})), Ok(7));
        assert!(iterations_left(&serde_json::json!({"iterations_left": 4_294_967_296u64})).is_err());
        assert!(iterations_left(&serde_json::json!({"iterations_left": -1})).is_err());
    }

    #[test]
    fn a_run_configuration_with_a_wrapping_memory_size_is_refused() {
        assert!(check_run_config(&RunConfig::default()).is_ok());
        let config = RunConfig { memory_mib: 1 << 44, ..RunConfig::default() };
        assert!(check_run_config(&config).unwrap_err().contains("memory_mib"));
    }
}
