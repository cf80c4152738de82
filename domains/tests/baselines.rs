//! The host-side baselines reproduce FunSearch's Table 1 (excess bins over the L1 bound, in %)
//! on the published data, to the printed precision.

use hyperagent_domains::bin_packing::{best_fit, first_fit, mean_excess, published_sets};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    std::env::var_os("HYPERAGENT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

#[test]
fn first_fit_and_best_fit_match_funsearch_table_1() {
    let sets = published_sets(&data_dir()).expect("the bin-packing data (set HYPERAGENT_DATA_DIR)");
    let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["OR1", "OR2", "OR3", "OR4", "Weibull 5k"]);
    let sizes: Vec<(usize, usize)> = sets.iter().map(|s| (s.instances.len(), s.instances[0].items.len())).collect();
    assert_eq!(sizes, [(20, 120), (20, 250), (20, 500), (20, 1000), (5, 5000)]);
    let first = ["6.42", "6.45", "5.74", "5.23", "4.23"];
    let best = ["5.81", "6.06", "5.37", "4.94", "3.98"];
    for (i, set) in sets.iter().enumerate() {
        assert_eq!(format!("{:.2}", 100.0 * mean_excess(set, first_fit)), first[i], "first fit on {}", set.name);
        assert_eq!(format!("{:.2}", 100.0 * mean_excess(set, best_fit)), best[i], "best fit on {}", set.name);
    }
}

#[test]
fn the_domain_seam_reports_the_same_table() {
    let domain =
        hyperagent_domains::domain::open("bin_packing", &serde_json::Value::Null, std::path::Path::new(".")).unwrap();
    let sets = domain.test_sets(&data_dir()).unwrap();
    assert!(sets.notice.is_none(), "the published data is read");
    let best = ["5.81", "6.06", "5.37", "4.94", "3.98"];
    for (set, expected) in sets.sets.iter().zip(best) {
        let scores: Vec<_> = set.tasks.iter().map(|t| domain.baseline("best fit", t).unwrap()).collect();
        let report = domain.report(&set.tasks, &scores);
        assert_eq!(format!("{:.2}", 100.0 * report.value), expected, "best fit on {}", set.name);
        assert!(!set.generated);
    }
}
