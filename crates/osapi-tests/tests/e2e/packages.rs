//! `node.packages.get`, the first operation added through the catalogue
//! alone: its generic synchronous route, its job, its typed result through
//! the client, its checks and its OpenAPI path. Agents read the machine's
//! real package database (dpkg or rpm).

use std::time::Duration;

use osapi_api::ops::{PackagesParams, op};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn installed_packages_through_the_route_the_job_and_the_client() {
    let stack = common::fleet().await;

    // Through the client, typed: every installed package of one host.
    let all = stack
        .client
        .run::<op::NodePackagesGet>("web-01", &PackagesParams::default(), WAIT)
        .await
        .unwrap()
        .result()
        .unwrap();
    assert!(["dpkg", "rpm"].contains(&all.manager.as_str()), "{all:?}");
    let first = all.packages.first().expect("this machine has packages");
    assert!(!first.version.is_empty());

    // The generic route: the parameters are the body, one item per host.
    let name = first.name.clone();
    let (status, body) = stack
        .admin(
            Method::POST,
            "/node/_all/packages",
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["results"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{body}");
    for item in items {
        let packages = item["result"]["packages"].as_array().unwrap();
        assert!(!packages.is_empty(), "{item}");
        assert!(
            packages.iter().all(|p| p["name"] == name.as_str()),
            "{item}"
        );
    }
    assert!(body["job_id"].is_string());

    // A pattern: `*` matches any run of characters.
    let prefix: String = name.chars().take(2).collect();
    let matched = stack
        .client
        .run::<op::NodePackagesGet>(
            "_any",
            &PackagesParams {
                name: Some(format!("{prefix}*")),
            },
            WAIT,
        )
        .await
        .unwrap()
        .result()
        .unwrap();
    assert!(matched.packages.iter().any(|p| p.name == name));
    assert!(matched.packages.iter().all(|p| p.name.starts_with(&prefix)));
}

#[tokio::test]
async fn bad_patterns_are_refused_on_every_route() {
    let stack = common::single().await;
    let bad = json!({"name": "bash; rm -rf /"});
    let (status, body) = stack
        .admin(Method::POST, "/node/_any/packages", Some(bad.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("must be a package name or pattern"),
        "{body}"
    );
    let (status, body) = stack
        .admin(
            Method::POST,
            "/job",
            Some(json!({"operation": {"type": "node.packages.get", "data": bad}, "target_hostname": "_any"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A body of the wrong type is a 400 too, and no job is created.
    let (status, _) = stack
        .admin(
            Method::POST,
            "/node/_any/packages",
            Some(json!({"name": 7})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, jobs) = stack.admin(Method::GET, "/job", None).await;
    assert_eq!(jobs["total_items"], 0, "{jobs}");
}

#[tokio::test]
async fn the_generic_route_is_documented_from_the_catalogue() {
    let stack = common::single().await;
    let doc = stack.client.openapi().await.unwrap();
    let post = &doc["paths"]["/node/{hostname}/packages"]["post"];
    assert_eq!(post["security"][0]["BearerAuth"], json!(["node:read"]));
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/PackagesParams"
    );
    assert!(doc["components"]["schemas"]["PackagesParams"]["properties"]["name"].is_object());
    assert_eq!(
        post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Collection_OperationItem"
    );
    assert!(doc["components"]["schemas"]["OperationItem"].is_object());
}
