# Recipes for everyday work. Every recipe is a plain cargo command, so nothing here is required.

# Install the guest target (once per machine).
setup:
    rustup target add wasm32-wasip2

# The main job: build the sample hyperagent, run it, let it make a child, run the child.
run *ARGS: setup
    cargo run -- {{ARGS}}

demo: setup
    cargo run -- demo

# The tests CI runs, as CI runs them.
test:
    bash .ci/run

# Benchmarks of the runtime core (release build; prints medians and ratios).
bench: setup
    cargo bench --bench runtime
    cargo bench --bench generation
    cargo bench --bench evidence

lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --manifest-path agent-sdk/Cargo.toml --target-dir target/agent-sdk -- -D warnings

# Fuzz the parsers of untrusted bytes (archive manifests and nodes, export bundles, packing answers,
# LLM edits and responses) for SECONDS each. libFuzzer needs unstable compiler flags; the stable
# toolchain accepts them under RUSTC_BOOTSTRAP. Findings land in fuzz/artifacts/<target>/.
fuzz SECONDS="30":
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd fuzz
    for target in manifest node bundle packing_answer edits llm_response; do
        mkdir -p corpus/$target
        RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir ../target/fuzz $target corpus/$target seeds/$target \
            -- -max_total_time={{SECONDS}} -rss_limit_mb=4096
    done

# The judgement domains' measurements: DOMAIN (paper_review or imo_grading) with the default budget,
# full DGM-H and the two ablations, seeds 0-2, each in its own home under target/measure; prints
# every run's test table (baselines beside) for the medians. Needs the data directory.
measure-judgement DOMAIN="paper_review":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release --bin hyperagent
    export HYPERAGENT_GUEST_TARGET="$PWD/target/guest-test"
    mkdir -p target/measure
    printf 'domains = ["%s"]\n' "{{DOMAIN}}" > target/measure/{{DOMAIN}}.toml
    for method in dgm-h fixed-meta no-archive; do
        flag=""; [ "$method" = dgm-h ] || flag="--$method"
        for seed in 0 1 2; do
            home="target/measure/{{DOMAIN}}-$method-$seed"; rm -rf "$home"
            echo "== {{DOMAIN}} $method seed $seed"
            /usr/bin/time -f "%e s" env HYPERAGENT_HOME="$home" ./target/release/hyperagent run \
                --config target/measure/{{DOMAIN}}.toml --seed "$seed" $flag | tail -4
        done
    done
