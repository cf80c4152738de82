//! Connecting to the NATS server (credentials and TLS when configured) and making sure the
//! streams, the workers' consumer and the object store exist.

use super::{ClusterError, js_error};
use async_nats::jetstream::{self, consumer, object_store, stream};
use std::path::PathBuf;
use std::time::Duration;

/// How to reach the server. Credentials: a user and password, or an NKey seed file; TLS: a CA
/// file to trust, and a client certificate when the server asks for one.
#[derive(Debug, Clone, Default)]
pub struct NatsSettings {
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// A file holding the NKey seed (`SU...`); it stays on this machine.
    pub nkey_seed_file: Option<PathBuf>,
    /// Root certificate(s) to trust; setting it requires TLS.
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub require_tls: bool,
    /// Bytes the object store may hold (when this host creates it).
    pub object_store_bytes: i64,
    /// How long the first connection is retried (a worker may start before its server).
    pub connect_within: Duration,
}

impl NatsSettings {
    pub fn new(url: impl Into<String>) -> NatsSettings {
        NatsSettings {
            url: url.into(),
            object_store_bytes: super::DEFAULT_OBJECT_STORE_BYTES,
            connect_within: Duration::from_secs(30),
            ..Default::default()
        }
    }

    /// Connects; the client reconnects by itself whenever the server goes away and comes back.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, ClusterError> {
        let fail = |reason: String| ClusterError::Connect { url: self.url.clone(), reason };
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(10))
            .max_reconnects(None);
        match (&self.user, &self.password, &self.nkey_seed_file) {
            (Some(_), _, Some(_)) => return Err(fail("give a user and password or an NKey, not both".into())),
            (Some(user), password, None) => {
                options = options.user_and_password(user.clone(), password.clone().unwrap_or_default())
            }
            (None, Some(_), _) => return Err(fail("a password needs a user".into())),
            (None, None, Some(file)) => {
                let seed = std::fs::read_to_string(file)
                    .map_err(|e| fail(format!("cannot read the NKey seed {}: {e}", file.display())))?;
                options = options.nkey(seed.trim().to_owned());
            }
            (None, None, None) => {}
        }
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.require_tls {
            options = options.require_tls(true);
        }
        // A worker may start before its server: the first connection is retried, but only for
        // `connect_within`, and never after the server has refused the credentials.
        let deadline = tokio::time::Instant::now() + self.connect_within;
        loop {
            match options.clone().connect(self.url.as_str()).await {
                Ok(client) => return Ok(client),
                Err(e) if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation => {
                    return Err(fail(format!("{e}: the server refused these credentials")));
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(fail(format!("{e} (retried for {} s)", self.connect_within.as_secs())));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

/// JetStream refuses a bucket whose reservation exceeds its store limit (error code 10047);
/// say which two numbers to change.
fn no_room_hint(e: impl std::fmt::Display, bytes: i64) -> ClusterError {
    let text = e.to_string();
    if text.contains("10047") || text.contains("insufficient storage") {
        ClusterError::JetStream(format!(
            "{text}: the object store reserves {} GiB; give the server more room (`max_file_store` in \
             its `jetstream` block, or the account's `max_file`) or ask for less (--nats-object-store-gib)",
            bytes >> 30
        ))
    } else {
        js_error(text)
    }
}

/// The server-side layout every coordinator and worker shares, created when absent.
#[derive(Clone)]
pub struct Layout {
    pub js: jetstream::Context,
    pub jobs: stream::Stream,
    pub results: stream::Stream,
    pub evals: stream::Stream,
    pub objects: object_store::ObjectStore,
}

impl Layout {
    pub async fn open(client: async_nats::Client, settings: &NatsSettings) -> Result<Layout, ClusterError> {
        let js = jetstream::new(client);
        let work_queue = |name: &str, subjects: &str| stream::Config {
            name: name.to_owned(),
            subjects: vec![subjects.to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            max_messages: super::MAX_QUEUED_JOBS,
            max_message_size: super::MAX_MESSAGE_BYTES as i32,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        let jobs =
            js.get_or_create_stream(work_queue(super::JOBS_STREAM, "hyperagent.jobs.*")).await.map_err(js_error)?;
        let results = js
            .get_or_create_stream(work_queue(super::RESULTS_STREAM, "hyperagent.results.*"))
            .await
            .map_err(js_error)?;
        let evals =
            js.get_or_create_stream(work_queue(super::EVALS_STREAM, "hyperagent.evals.*")).await.map_err(js_error)?;
        let objects = match js.get_object_store(super::OBJECT_BUCKET).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: super::OBJECT_BUCKET.to_owned(),
                    max_bytes: settings.object_store_bytes,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| no_room_hint(e, settings.object_store_bytes))?,
        };
        Ok(Layout { js, jobs, results, evals, objects })
    }

    /// The consumer workers share. Its ack wait and delivery limit are set by whoever creates it.
    pub async fn workers_consumer(
        &self,
        ack_wait: Duration,
        max_deliver: i64,
    ) -> Result<consumer::PullConsumer, ClusterError> {
        shared_consumer(&self.jobs, super::WORKERS_CONSUMER, ack_wait, max_deliver).await
    }

    /// The consumer of evaluation parts workers share, set up as [`Layout::workers_consumer`].
    pub async fn evaluators_consumer(
        &self,
        ack_wait: Duration,
        max_deliver: i64,
    ) -> Result<consumer::PullConsumer, ClusterError> {
        shared_consumer(&self.evals, super::EVALUATORS_CONSUMER, ack_wait, max_deliver).await
    }
}

async fn shared_consumer(
    stream: &stream::Stream,
    name: &str,
    ack_wait: Duration,
    max_deliver: i64,
) -> Result<consumer::PullConsumer, ClusterError> {
    let config = consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_deliver,
        ..Default::default()
    };
    stream.get_or_create_consumer(name, config).await.map_err(js_error)
}
