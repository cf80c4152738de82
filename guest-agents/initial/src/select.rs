//! The parent selector (used when the run says `selection = "agent"`): uniform over the nodes that
//! can be parents, one draw per slot. Deliberately plain, as the starting point the paper's
//! editable-selection experiment uses; a meta agent may rewrite it like any other part.

use agent_sdk::rng::Rng;
use agent_sdk::SelectRequest;

pub fn choose(request: &SelectRequest) -> Result<Vec<String>, String> {
    let valid: Vec<String> =
        agent_sdk::select::nodes(request)?.into_iter().filter(|n| n.valid).map(|n| n.node).collect();
    if valid.is_empty() {
        return Err("no node can be a parent".into());
    }
    let mut rng = Rng::derive(request.seed, "select");
    Ok((0..request.count).map(|_| valid[rng.below(valid.len() as u64) as usize].clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(seed: u64) -> SelectRequest {
        let nodes: Vec<String> = (0..4)
            .map(|i| format!(r#"{{"node": "n{i}", "generation": {i}, "valid": {}}}"#, i != 2))
            .collect();
        SelectRequest { archive: format!(r#"{{"nodes": [{}]}}"#, nodes.join(",")), count: 3, seed }
    }

    #[test]
    fn chooses_only_valid_nodes_reproducibly_and_all_of_them_over_seeds() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let chosen = choose(&request(seed)).unwrap();
            assert_eq!(chosen.len(), 3);
            assert_eq!(chosen, choose(&request(seed)).unwrap());
            assert!(!chosen.contains(&"n2".to_owned()), "n2 cannot be a parent");
            seen.extend(chosen);
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
    }
}
