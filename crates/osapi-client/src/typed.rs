//! Operations as types over the REST client: [`crate::Client::run`] starts
//! a job of any operation of the catalogue with its typed parameters, waits
//! for it, and gives each host's answer decoded as the operation's result.

use std::marker::PhantomData;
use std::time::Duration;

use osapi_api::job::{CreateJobRequest, JobDetail, JobStatus};
use osapi_api::ops::Op;

use crate::{Client, ClientError, Result};

/// A finished job of operation `O`.
#[derive(Debug, Clone)]
pub struct OpJob<O: Op> {
    /// The job as the controller reports it.
    pub detail: JobDetail,
    _op: PhantomData<O>,
}

/// One host's answer to an [`OpJob`].
#[derive(Debug, Clone, PartialEq)]
pub struct HostAnswer<T> {
    /// The agent's hostname.
    pub hostname: String,
    /// Its result, or its error text.
    pub result: std::result::Result<T, String>,
    /// Whether the host changed (when the controller says).
    pub changed: Option<bool>,
}

impl<O: Op> OpJob<O> {
    /// Each host's answer, in hostname order. A job answered by one host
    /// without per-host responses (upstream's shape) gives one answer.
    pub fn answers(&self) -> Result<Vec<HostAnswer<O::Output>>> {
        let decode = |data: Option<&serde_json::Value>| {
            serde_json::from_value::<O::Output>(data.cloned().unwrap_or_default()).map_err(|e| {
                ClientError::Decode {
                    status: 200,
                    message: format!(
                        "the answer to {} does not decode as its result type: {e}",
                        O::OPERATION
                    ),
                    source: std::sync::Arc::new(e),
                }
            })
        };
        if let Some(responses) = self.detail.responses.as_ref().filter(|r| !r.is_empty()) {
            return responses
                .values()
                .map(|r| {
                    let result = match (&r.error, r.status.as_str()) {
                        (Some(e), _) => Err(e.clone()),
                        (None, "failed") => Err("failed".to_string()),
                        (None, _) => Ok(decode(r.data.as_ref())?),
                    };
                    Ok(HostAnswer {
                        hostname: r.hostname.clone(),
                        result,
                        changed: r.changed,
                    })
                })
                .collect();
        }
        let hostname = self.detail.hostname.clone().unwrap_or_default();
        if self.detail.status() == JobStatus::Failed {
            let error = self.detail.error.clone().unwrap_or_else(|| "failed".into());
            return Ok(vec![HostAnswer {
                hostname,
                result: Err(error),
                changed: None,
            }]);
        }
        let Some(data) = self.detail.result.as_ref() else {
            return Ok(Vec::new());
        };
        Ok(vec![HostAnswer {
            hostname,
            result: Ok(decode(Some(data))?),
            changed: None,
        }])
    }

    /// The single host's result (an `_any` or hostname target): an error
    /// when no host or several answered, or when the host failed.
    pub fn result(&self) -> Result<O::Output> {
        let mut answers = self.answers()?;
        if answers.len() != 1 {
            return Err(ClientError::InvalidInput {
                message: format!(
                    "job {} of {} has {} answers: use answers()",
                    self.detail.id.map(|i| i.to_string()).unwrap_or_default(),
                    O::OPERATION,
                    answers.len()
                ),
            });
        }
        let answer = answers.remove(0);
        answer.result.map_err(|e| ClientError::InvalidInput {
            message: format!("{} failed on {}: {e}", O::OPERATION, answer.hostname),
        })
    }
}

impl Client {
    /// Runs operation `O` on `target` with typed `params` as a job and
    /// waits up to `timeout` for it to finish.
    ///
    /// ```no_run
    /// # async fn demo(client: &osapi_client::Client) -> osapi_client::Result<()> {
    /// use std::time::Duration;
    /// use osapi_api::ops::{NoParams, op};
    /// let job = client.run::<op::NodeLoadGet>("_any", &NoParams {}, Duration::from_secs(30)).await?;
    /// println!("load1 = {}", job.result()?.load1);
    /// # Ok(()) }
    /// ```
    pub async fn run<O: Op>(
        &self,
        target: &str,
        params: &O::Params,
        timeout: Duration,
    ) -> Result<OpJob<O>> {
        let data = serde_json::to_value(params).map_err(|e| ClientError::InvalidInput {
            message: format!("cannot encode the parameters of {}: {e}", O::OPERATION),
        })?;
        let request = CreateJobRequest::new(O::OPERATION.as_str(), data, target);
        let detail = self.run_job(&request, timeout).await?;
        Ok(OpJob {
            detail,
            _op: PhantomData,
        })
    }
}
