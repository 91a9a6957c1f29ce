use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use strongroom_core::Vault;
use strongroom_core::model::{
    Acknowledgement, AcknowledgementReceipt, Agreement, Credentials, LoginResponse, User,
};

use crate::error::ApiResult;
use crate::extract::{Caller, Json};
use crate::request_id;

pub async fn login(
    State(vault): State<Arc<Vault>>,
    Json(credentials): Json<Credentials>,
) -> ApiResult<axum::Json<LoginResponse>> {
    Ok(axum::Json(
        vault.login(credentials, &request_id::current()).await?,
    ))
}

pub async fn logout(State(vault): State<Arc<Vault>>, caller: Caller) -> ApiResult<StatusCode> {
    vault.logout(&caller.principal, &caller.ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(State(vault): State<Arc<Vault>>, caller: Caller) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(vault.me(&caller.principal).await?))
}

pub async fn agreement(State(vault): State<Arc<Vault>>, _caller: Caller) -> axum::Json<Agreement> {
    axum::Json(vault.agreement())
}

pub async fn acknowledge(
    State(vault): State<Arc<Vault>>,
    caller: Caller,
    Json(ack): Json<Acknowledgement>,
) -> ApiResult<axum::Json<AcknowledgementReceipt>> {
    Ok(axum::Json(
        vault
            .acknowledge_confidentiality(&caller.principal, &caller.ctx, ack)
            .await?,
    ))
}
