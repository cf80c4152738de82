//! The loop itself: the initial node, then generation after generation (parents chosen, children
//! made in parallel and entered in slot order), then the test phase.

use super::*;

impl Evolution {
    /// Runs (or continues) the loop to the end, then evaluates the best node on the test sets.
    pub async fn run(&mut self, progress: &(dyn Fn(Progress) + Sync)) -> Result<(), RunError> {
        if self.finished {
            return Ok(());
        }
        for notice in self.test_sets.iter().filter_map(|t| t.notice.clone()) {
            progress(Progress::Notice(notice));
        }
        if self.completed_generations.is_none() && self.nodes.is_empty() {
            self.append(&Event::Started {
                schema: log::LOG_SCHEMA.to_owned(),
                config: Box::new(self.config.clone()),
                config_hash: self.config.hash(),
                provenance: serde_json::to_value(&self.provenance).expect("provenance serialises"),
            })?;
        }
        if self.completed_generations.is_none() {
            progress(Progress::Generation { generation: 0, of: self.config.generations });
            if self.initial().is_none() {
                let record = self.make_initial().await?;
                self.record_node(record, progress)?;
            }
            self.append(&Event::Generation { generation: 0 })?;
            self.completed_generations = Some(0);
            self.seal()?;
        }
        while let Some(done) = self.completed_generations.filter(|g| *g < self.config.generations) {
            if self.stopped.is_some() {
                break;
            }
            let generation = done + 1;
            progress(Progress::Generation { generation, of: self.config.generations });
            self.run_generation(generation, progress).await?;
            self.append(&Event::Generation { generation })?;
            self.completed_generations = Some(generation);
            self.seal()?;
            // A spent LLM budget ends the run cleanly: what is archived stays, and the log says why.
            // A replay stops where the recorded run stopped.
            let exhausted = match &self.llm {
                Some(Source::Live(backend)) => backend.exhausted(),
                Some(Source::Replay(index)) => index.stopped_after(generation).map(str::to_owned),
                None => None,
            };
            if let Some(reason) = exhausted {
                self.append(&Event::Stopped { reason: reason.clone() })?;
                self.stopped = Some(reason);
            }
        }
        self.test_phase(progress).await?;
        let best = self.best().map(|b| b.id).ok_or_else(|| RunError::Invalid("no node could be evaluated".into()))?;
        self.append(&Event::Finished { best })?;
        self.finished = true;
        self.seal()?;
        Ok(())
    }

    async fn make_initial(&mut self) -> Result<NodeRecord, RunError> {
        let outcome = self.build_dir(self.initial_agent.clone()).await?;
        let BuildOutcome::Built { tree, component, .. } = outcome else {
            return Err(RunError::Invalid(format!("the initial hyperagent does not build: {outcome:?}")));
        };
        let loaded = self.sandbox.load(&self.archive.get_blob(&component)?)?;
        let evaluation = evaluate::evaluate(
            &self.sandbox,
            evaluate::Evaluated { component, loaded: &loaded },
            &self.plan(call_name("task", 0, 0)),
            &self.archive,
        )
        .await?;
        // The initial hyperagent goes through the staged gate like any child.
        let status = if evaluation.passed_gate { Status::Evaluated } else { Status::StagedOnly };
        let node = NodeMetadata {
            generation: 0,
            slot: 0,
            status,
            score: Some(evaluation.score),
            evaluation: Some(evaluation.clone()),
            meta: MetaRecord {
                summary: "initial hyperagent".into(),
                rationale: None,
                outcome: None,
                fuel: None,
                logs: Vec::new(),
                component: None,
                tools: Vec::new(),
            },
            build: None,
            llm: Vec::new(),
            provenance: self.provenance_hash,
        }
        .into_node(tree, Some(component), None);
        let id = self.archive.put_node(&node)?;
        Ok(NodeRecord {
            id,
            parent: None,
            generation: 0,
            slot: 0,
            tree,
            component: Some(component),
            score: Some(evaluation.score),
            results: evaluation.results(),
            status: status.label().to_owned(),
            summary: "initial hyperagent".into(),
            children: 0,
            // Its task agents' exchanges, logged like any node's so that a replay can answer them.
            exchanges: evaluation.exchanges,
        })
    }

    /// `/history`'s entries for `nodes`, made once per node and kept.
    fn history_entries(
        &mut self,
        nodes: &[NodeRecord],
    ) -> Result<Vec<(ContentHash, Arc<serde_json::Value>)>, RunError> {
        let training = history::training_tasks(&self.domains);
        let mut entries = Vec::with_capacity(nodes.len());
        for node in nodes {
            if !self.history_entries.contains_key(&node.id) {
                let parent_tree = node.parent.and_then(|p| self.nodes.iter().find(|n| n.id == p)).map(|p| p.tree);
                let entry = history::node_entry(&self.archive, node, parent_tree, &self.domains, &training)?;
                self.history_entries.insert(node.id, Arc::new(entry));
            }
            entries.push((node.id, self.history_entries[&node.id].clone()));
        }
        Ok(entries)
    }

    /// The parent of each slot, chosen from the archive as it stands now.
    pub fn choose_parents(&self, generation: u32) -> Vec<NodeRecord> {
        choose_parents(&self.config, &self.nodes, generation)
    }

    /// The parents of `generation`'s slots: by the host's rule, or under `agent` by the newest
    /// selector's answer (the host's fallback rule, recorded with the reason, when it cannot be
    /// used).
    async fn parents_of(
        &mut self,
        generation: u32,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Vec<NodeRecord>, RunError> {
        if effective_rule(&self.config) != selection::Selection::Agent {
            return Ok(self.choose_parents(generation));
        }
        let before = archive_before(&self.nodes, generation);
        let seed = derive_seed(self.config.seed, "select", generation, 0);
        let mut answer = None;
        for node in before.iter().rev().filter(|n| n.can_be_parent()) {
            let Some(component) = node.component else { continue };
            let loaded = self.sandbox.load(&self.archive.get_blob(&component)?)?;
            if loaded.has_selector() {
                let count = self.config.children_per_generation;
                answer = Some(selector::ask(&self.sandbox, node.id, &loaded, &before, count, seed).await?);
                break;
            }
        }
        let selector = answer.as_ref().map(|a| a.selector);
        let (parents, fallback) = match answer.map(|a| a.parents) {
            Some(Ok(ids)) => (ids.iter().filter_map(|id| before.iter().find(|n| n.id == *id).cloned()).collect(), None),
            Some(Err(why)) => (self.choose_parents(generation), Some(why)),
            None => (self.choose_parents(generation), Some("no node exports a parent selector".to_owned())),
        };
        if let Some(why) = &fallback {
            progress(Progress::Notice(format!(
                "generation {generation}: parents by the fallback rule {:?}: {}",
                view::host_rule(&self.config),
                why
            )));
        }
        let logged = self
            .log
            .contents()
            .events
            .iter()
            .any(|e| matches!(e, Event::Selection { generation: g, .. } if *g == generation));
        if !logged {
            let ids = parents.iter().map(|p: &NodeRecord| p.id).collect();
            self.append(&Event::Selection { generation, selector, parents: ids, fallback })?;
        }
        Ok(parents)
    }

    async fn run_generation(&mut self, generation: u32, progress: &(dyn Fn(Progress) + Sync)) -> Result<(), RunError> {
        let started = Instant::now();
        let parents = self.parents_of(generation, progress).await?;
        if parents.is_empty() {
            return Err(RunError::Invalid(format!("generation {generation}: no node in the archive can be a parent")));
        }
        let select_time = started.elapsed();
        let done: Vec<u32> = self.nodes.iter().filter(|n| n.generation == generation).map(|n| n.slot).collect();
        let initial_component = self.initial().and_then(|n| n.component);
        let before = archive_before(&self.nodes, generation);
        let snapshot = Arc::new(farm::HistorySnapshot {
            nodes: history::archive_list(&before, effective_rule(&self.config)),
            entries: self.history_entries(&before)?,
        });
        let mut orders = Vec::new();
        for (slot, parent) in parents.into_iter().enumerate() {
            let slot = slot as u32;
            if done.contains(&slot) {
                continue;
            }
            let meta_component = if self.config.fixed_meta { initial_component } else { parent.component };
            orders.push(farm::ChildOrder {
                generation,
                slot,
                parent: parent.id,
                parent_tree: parent.tree,
                meta_component: meta_component
                    .ok_or_else(|| RunError::Invalid("a parent without a component was selected".into()))?,
                seed: derive_seed(self.config.seed, "meta", generation, slot),
                iterations_left: self.config.generations - generation,
            });
        }
        let results = match &self.farm {
            Some(farm) => farm.make_children(self, orders, snapshot).await?.into_iter().map(Ok).collect(),
            // Polled together on this task: each child's builds run on blocking threads and its
            // evaluation on spawned tasks, so the children of a generation overlap.
            None => {
                futures::future::join_all(
                    orders.into_iter().map(|order| self.make_ordered_child(order, snapshot.clone())),
                )
                .await
            }
        };
        let mut records = Vec::new();
        for result in results {
            let (record, mut times) = result?;
            times.select = select_time;
            self.times.push(times);
            records.push(record);
        }
        // Archive order is slot order, whatever order the children finished in.
        records.sort_by_key(|r| r.slot);
        for record in records {
            self.record_node(record, progress)?;
        }
        Ok(())
    }

    /// Logs a finished node (its LLM exchanges first, then the node) and enters it in the archive view.
    fn record_node(&mut self, record: NodeRecord, progress: &(dyn Fn(Progress) + Sync)) -> Result<(), RunError> {
        self.check_replayed(&record)?;
        progress(Progress::Child {
            generation: record.generation,
            slot: record.slot,
            status: record.status.clone(),
            score: record.score,
            summary: record.summary.clone(),
        });
        for (exchange, wall_ms) in &record.exchanges {
            self.append(&Event::LlmExchange { node: record.id, record: *exchange, wall_ms: *wall_ms })?;
        }
        self.append(&Event::Node {
            generation: record.generation,
            slot: record.slot,
            node: record.id,
            parent: record.parent,
            score: record.score,
            status: record.status.clone(),
        })?;
        self.enter(record);
        Ok(())
    }
}
