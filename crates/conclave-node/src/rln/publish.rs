//! Publishing anonymously: a message id from the epoch's quota, a proof (finishing the cached
//! partial proof under the current root), a random release delay, then the stem.

use std::sync::Arc;
use std::time::Duration;

use conclave_core::TopicName;
use conclave_rln::{Fr, PartialProof, PoolError, PublishError as DraftError, RlnIdentity};

use super::{now_ms, Published, RlnNode, RlnPublishError};

impl RlnNode {
    /// Proves and publishes `payload` anonymously on `topic` under a fresh message id.
    pub async fn publish(
        &self,
        topic: TopicName,
        payload: Vec<u8>,
    ) -> Result<Published, RlnPublishError> {
        let identity = self.identity.as_ref().ok_or(RlnPublishError::NoIdentity)?;
        // Refused before a message id (quota) is spent on it.
        if payload.len() > conclave_rln::MAX_PAYLOAD {
            return Err(RlnPublishError::TooLarge { len: payload.len() });
        }
        let now = now_ms();
        let epoch = self.cfg.rules.epoch_of(now);
        let limit = self
            .channel()
            .membership()
            .leaf_of(identity)
            .map(|(_, limit)| limit)
            .ok_or(RlnPublishError::NotAMember)?;
        let store = self.store.clone();
        let id = tokio::task::spawn_blocking(move || store.allocate_rln_message_id(epoch, limit))
            .await
            .map_err(|e| RlnPublishError::Prove(e.to_string()))?
            .map_err(RlnPublishError::Quota)?;
        let (draft, root) = {
            let ch = self.channel();
            let draft = ch
                .draft(identity, topic.as_str(), payload, now, id)
                .map_err(|e| match e {
                    DraftError::NotAMember => RlnPublishError::NotAMember,
                    other => RlnPublishError::Prove(other.to_string()),
                })?;
            (draft, ch.membership().root())
        };
        let partial = self.partial_for(identity, root).await;
        let proved = self
            .pool
            .prove(draft.witness.clone(), partial)
            .await
            .map_err(|e| match e {
                PoolError::Busy(_) => RlnPublishError::Busy,
                other => RlnPublishError::Prove(other.to_string()),
            })?;
        let raw = draft.finish(proved.value.0, proved.value.1).encode();
        tokio::time::sleep(release_delay(self.cfg.release_jitter)).await;
        let message_id = self.net.current().publish_anonymous(topic, raw).await?;
        Ok(Published {
            message_id,
            epoch,
            proof_ms: proved.took.as_millis() as u64,
        })
    }

    /// The cached partial proof under `root`, computing it once per root; `None` (a full proof
    /// then) when the pool cannot make one now.
    async fn partial_for(&self, identity: &RlnIdentity, root: Fr) -> Option<Arc<PartialProof>> {
        if let Some((r, p)) = crate::lock(&self.partial).as_ref() {
            if *r == root {
                return Some(p.clone());
            }
        }
        let input = {
            let ch = self.channel();
            if ch.membership().root() != root {
                return None;
            }
            ch.partial_witness(identity).ok()?
        };
        let p = Arc::new(self.pool.partial(input).await.ok()?.value);
        *crate::lock(&self.partial) = Some((root, p.clone()));
        Some(p)
    }
}

/// A uniformly random delay up to `jitter`.
fn release_delay(jitter: Duration) -> Duration {
    use rand::Rng;
    let ms = jitter.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
}

/// The API's ceiling on one anonymous publish (id allocation, proof, gossip).
pub(crate) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
