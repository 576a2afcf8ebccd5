//! A small HTTP client for the suite: every status is an answer, never an error.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
    agent: ureq::Agent,
}

/// A response: status and JSON body (`null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Each `Set-Cookie` header's `name=value`, without its attributes.
    pub cookies: Vec<String>,
}

impl Client {
    pub fn new(base_url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            base_url: base_url.to_owned(),
            agent,
        }
    }

    pub fn get(&self, path: &str, cookie: Option<&str>) -> Result<Reply, ureq::Error> {
        let mut request = self.agent.get(format!("{}{path}", self.base_url));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        Self::reply(request.call()?)
    }

    pub fn post(&self, path: &str, cookie: Option<&str>, body: &str) -> Result<Reply, ureq::Error> {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        Self::reply(request.send(body)?)
    }

    /// Any method, with any headers (`cookie`, `authorization`) and an optional JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match body {
            Some(body) => self.agent.run(
                request
                    .header("content-type", "application/json")
                    .body(body.to_owned())
                    .map_err(ureq::Error::from)?,
            )?,
            None => self
                .agent
                .run(request.body(()).map_err(ureq::Error::from)?)?,
        };
        Self::reply(response)
    }

    pub fn put(&self, path: &str, body: &str) -> Result<Reply, ureq::Error> {
        let request = self
            .agent
            .put(format!("{}{path}", self.base_url))
            .header("content-type", "application/json");
        Self::reply(request.send(body)?)
    }

    fn reply(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
        let status = response.status().as_u16();
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.split(';').next())
            .map(str::to_owned)
            .collect();
        let text = response.body_mut().read_to_string()?;
        Ok(Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            cookies,
        })
    }
}
