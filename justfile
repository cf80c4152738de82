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

# An experiment plan (methods x seeds; see README "Experiments") with the release build, e.g.
# `just experiment experiments/ablation-paper-review.toml`. Killed, it resumes where it stopped.
experiment PLAN: setup
    cargo build --release --bin hyperagent
    ./target/release/hyperagent experiment {{PLAN}}

# The cost of one meta call's program work (parse, edit, print), natively in release: a benchmark
# kept as an ignored test of the guest crate, which is outside the host workspace.
bench-meta:
    cargo test --release --manifest-path guest-agents/initial/Cargo.toml --target-dir target/initial-tests \
        -- --ignored --nocapture meta_call_cost
    rm -f guest-agents/initial/Cargo.lock

# Children per minute with the local loop and with 1 and 2 workers over a loopback NATS server
# (Debian's nats-server), and one job's traffic: an ignored test of tests/cluster.rs.
bench-cluster: setup
    cargo test --release -p hyperagent --test cluster -- --ignored --nocapture cluster_throughput

# Robot reward design: simulated steps per second, a reward call as WebAssembly against native,
# and the hand-written rewards trained by the optimiser (ROLLOUTS per training, SEEDS seeds).
bench-robotics ROLLOUTS="288" SEEDS="3": setup
    cargo bench -p hyperagent-robotics --bench simulation
    cargo bench --bench reward
    cargo run --release -p hyperagent-robotics --example optimiser -- {{ROLLOUTS}} {{SEEDS}}

# A live run against a real small model (SmolLM2-135M served by llama-cpp-python on loopback,
# installed into a virtual environment under the home directory; the first time builds llama.cpp,
# several minutes), then the same run replayed with the server stopped. Not part of CI.
llm-live GENERATIONS="3": setup
    bash scripts/llm-live.sh {{GENERATIONS}}
