//! The OpenAPI document describes every REST route.

use std::collections::BTreeSet;

use reqwest::Method;

use crate::helpers::*;

/// Every REST route the server serves. Adding a route without listing it here
/// (and documenting it) fails this test; so does documenting one that is gone.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/auth/sessions"),
    ("delete", "/api/v1/auth/sessions/{id}"),
    ("post", "/api/v1/auth/password"),
    ("post", "/api/v1/auth/email/verify"),
    ("post", "/api/v1/auth/password-reset"),
    ("post", "/api/v1/auth/password-reset/resend"),
    ("post", "/api/v1/auth/password-reset/confirm"),
    ("post", "/api/v1/auth/password-reset/complete"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/users/me"),
    ("patch", "/api/v1/users/me"),
    ("delete", "/api/v1/users/me"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("post", "/api/v1/dms"),
    ("get", "/api/v1/rooms/{id}/online"),
    ("patch", "/api/v1/rooms/{id}"),
    ("delete", "/api/v1/rooms/{id}"),
    ("post", "/api/v1/rooms/{id}/invitations"),
    ("get", "/api/v1/invitations"),
    ("post", "/api/v1/invitations/{room}/accept"),
    ("delete", "/api/v1/invitations/{room}"),
    ("delete", "/api/v1/rooms/{id}/members/{user_id}"),
    ("put", "/api/v1/rooms/{id}/members/{user_id}/role"),
    ("post", "/api/v1/rooms/{id}/owner"),
    ("post", "/api/v1/rooms/{id}/bans"),
    ("get", "/api/v1/rooms/{id}/bans"),
    ("delete", "/api/v1/rooms/{id}/bans/{user_id}"),
    ("post", "/api/v1/rooms/{id}/code"),
    ("get", "/api/v1/rooms"),
    ("post", "/api/v1/rooms"),
    ("post", "/api/v1/rooms/join"),
    ("get", "/api/v1/rooms/{id}"),
    ("get", "/api/v1/rooms/{id}/members"),
    ("post", "/api/v1/rooms/{id}/leave"),
    ("get", "/api/v1/rooms/{id}/messages"),
    ("post", "/api/v1/rooms/{id}/messages"),
    ("patch", "/api/v1/rooms/{id}/messages/{seq}"),
    ("delete", "/api/v1/rooms/{id}/messages/{seq}"),
    ("put", "/api/v1/rooms/{id}/read"),
    ("get", "/api/v1/rooms/{id}/read-markers"),
    ("post", "/api/v1/rooms/{id}/messages/{seq}/report"),
    ("get", "/api/v1/search"),
    ("get", "/api/v1/admin/admins"),
    ("get", "/api/v1/admin/users"),
    ("post", "/api/v1/admin/users/{id}/suspend"),
    ("post", "/api/v1/admin/users/{id}/unsuspend"),
    ("post", "/api/v1/admin/users/{id}/delete"),
    ("post", "/api/v1/admin/users/{id}/erase-messages"),
    ("get", "/api/v1/admin/rooms"),
    ("post", "/api/v1/admin/rooms/{id}/take-down"),
    ("post", "/api/v1/admin/rooms/{id}/owner"),
    ("post", "/api/v1/admin/rooms/{id}/messages/{seq}/delete"),
    ("get", "/api/v1/admin/reports"),
    ("post", "/api/v1/admin/reports/{id}/resolve"),
    ("get", "/api/v1/admin/audit"),
    ("put", "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}"),
    (
        "delete",
        "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}",
    ),
    ("get", "/api/v1/users/me/mentions"),
    ("post", "/api/v1/rooms/{id}/attachments"),
    ("get", "/api/v1/attachments/{id}"),
    ("get", "/api/v1/attachments/{id}/thumbnail"),
    // Last: it ends the login the loop below calls every route with.
    ("post", "/api/v1/auth/logout-all"),
];

#[tokio::test]
async fn the_document_lists_exactly_the_served_routes_with_resolvable_schemas() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .client
        .request(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);

    // Each listed route is really served (not 404/405 from the router).
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    for (method, path) in ROUTES {
        let path = path.replace("{id}", &room.id.to_string());
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = alice
            .client
            .request(method.clone(), &path)
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_ne!(
            body["error"]["code"], "method_not_allowed",
            "{method} {path}"
        );
        if body["error"]["code"] == "not_found" {
            assert_ne!(body["error"]["message"], "no such route", "{method} {path}");
        }
    }

    // Every `$ref` points at a schema the document defines.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
}

fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    out.push(v.as_str().unwrap().to_owned());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_route_lists_the_errors_any_route_of_its_kind_can_give_and_the_node_limits() {
    let app = spawn_app_with(|s| s.messages.max_body_bytes = 1000).await;
    let doc: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let statuses = operation["responses"].as_object().unwrap();
            let lists = |status: &str| statuses.contains_key(status);
            let route = format!("{method} {path}");
            assert!(lists("429") && lists("503"), "{route}");
            if !operation["requestBody"].is_null() {
                for status in ["400", "413", "415", "422"] {
                    assert!(lists(status), "{route} does not list {status}");
                }
            }
            if operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                assert!(lists("401"), "{route} does not list 401");
            }
        }
    }
    // The schemas state this node's own body limit.
    let body = &doc["components"]["schemas"]["PostMessageRequest"]["properties"]["body"];
    assert_eq!(body["maxLength"], 1000);
}
