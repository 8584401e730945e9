//! SQS through the official AWS SDK for Rust, for the provisioner's
//! interruption queue (Karpenter's `--interruption-queue`): the queue's URL
//! from its name (or a URL given as is), receives long-polled as Karpenter
//! polls (up to 10 messages, 20 s wait, 20 s visibility), deletes of the
//! messages handled. Calls are counted by the shared
//! [`outrigger_aws::Calls`] and retried by the shared policy.

use aws_sdk_sqs::{Client, types::MessageSystemAttributeName};
use outrigger_aws::{ApiError, Calls, SdkConfig};

/// The SDK's name for the service in [`Calls`].
pub const SERVICE: &str = "SQS";
/// Messages per receive, SQS's most.
pub const MAX_MESSAGES: i32 = 10;
/// Long-poll wait, SQS's most.
pub const WAIT_SECONDS: i32 = 20;
/// How long a received message stays hidden from other receivers.
pub const VISIBILITY_SECONDS: i32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("SQS {0}")]
    Api(#[from] ApiError),
}

impl SqsError {
    pub fn code(&self) -> &str {
        match self {
            SqsError::Api(e) => &e.code,
        }
    }
}

fn api<E: aws_sdk_sqs::error::ProvideErrorMetadata + std::fmt::Display>(
    op: &'static str,
) -> impl FnOnce(E) -> SqsError {
    outrigger_aws::api(op)
}

/// A message received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub id: String,
    /// What deletes it.
    pub receipt: String,
    pub body: String,
    /// When SQS received it (ms since the epoch), if it said.
    pub sent_ms: Option<i64>,
}

/// One queue.
pub struct Queue {
    client: Client,
    calls: Calls,
    name: String,
    url: String,
}

impl Queue {
    /// The queue named `name_or_url` (GetQueueUrl), or at that URL.
    pub async fn with_config(
        conf: &SdkConfig,
        calls: Calls,
        name_or_url: &str,
    ) -> Result<Self, SqsError> {
        let client = Client::from_conf(
            aws_sdk_sqs::config::Builder::from(conf)
                .interceptor(calls.clone())
                .build(),
        );
        let (name, url) =
            if name_or_url.starts_with("https://") || name_or_url.starts_with("http://") {
                let name = name_or_url
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(name_or_url)
                    .to_string();
                (name, name_or_url.to_string())
            } else {
                let out = client
                    .get_queue_url()
                    .queue_name(name_or_url)
                    .send()
                    .await
                    .map_err(api("GetQueueUrl"))?;
                (
                    name_or_url.to_string(),
                    out.queue_url().unwrap_or_default().to_string(),
                )
            };
        Ok(Self {
            client,
            calls,
            name,
            url,
        })
    }

    /// The queue from the environment's configuration, counting its own
    /// calls.
    pub async fn new(name_or_url: &str) -> Result<Self, SqsError> {
        Self::with_config(&outrigger_aws::config().await, Calls::new(), name_or_url).await
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    /// Up to [`MAX_MESSAGES`] messages, waiting up to [`WAIT_SECONDS`] for
    /// the first.
    pub async fn receive(&self) -> Result<Vec<Received>, SqsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(MAX_MESSAGES)
            .wait_time_seconds(WAIT_SECONDS)
            .visibility_timeout(VISIBILITY_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(api("ReceiveMessage"))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Received {
                id: m.message_id().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                sent_ms: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|s| s.parse().ok()),
            })
            .collect())
    }

    /// Deletes a message received.
    pub async fn delete(&self, receipt: &str) -> Result<(), SqsError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(api("DeleteMessage"))?;
        Ok(())
    }
}
