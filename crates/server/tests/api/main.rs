//! Integration tests: each starts a real server on a random port with its own
//! database, and drives it over real HTTP, WebSocket and gRPC connections.

mod accounts;
mod activity;
mod admin;
mod attachments;
mod authorization;
mod backup;
mod budgets;
mod clients;
mod cookies;
mod dashboards;
mod deceptive;
mod deletion;
mod edge;
mod edits;
mod email;
mod grpc;
mod handshakes;
mod helpers;
mod invitations;
mod journey;
mod keys;
mod limits;
mod live;
#[path = "../support/mail_sink.rs"]
mod mail_sink;
mod mentions;
mod messages;
mod moderation;
mod openapi;
mod people;
mod races;
mod reactions;
mod read_markers;
mod realtime;
mod rooms;
mod s3;
mod search;
mod sessions;
mod shutdown;
mod signalr;
mod socketio;
mod stomp;
mod thumbnails;
mod tls;
mod websocket;
