//! The one integration-test binary: the real service on 127.0.0.1:0 against a fake X.

mod auth;
mod browser;
mod callback;
mod cli;
mod connect;
mod crash;
mod delivery;
mod fake_tracardi;
mod fake_x;
mod leak;
mod limits;
mod metrics;
mod microservice;
mod ops;
mod redis;
mod redis_server;
mod slow;
mod store;
mod support;
mod validate;
mod x_activity;
mod x_admin;
