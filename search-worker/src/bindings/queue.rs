//! [`EnvQueue`]: the job queue port over the live lane's queue binding.

use shared::lane::Lane;
use shared::message::EmbeddingJob;
use worker::Env;
use worker_kit::Fault;

use crate::ports::JobQueue;

/// The Worker's `Env`, whose queue binding `enqueue` sends on.
#[derive(Debug)]
pub(crate) struct EnvQueue(pub Env);

/// An application's jobs are live work (`shared::lane`); the binding is looked up when
/// `enqueue` sends, so that a deployment without it still searches.
impl JobQueue for EnvQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        self.0.queue(Lane::Live.binding())?.send(job).await?;
        Ok(())
    }
}
