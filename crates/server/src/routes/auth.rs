use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use strongroom_core::Vault;
use strongroom_core::model::lockbox::CaseReach;
use strongroom_core::model::{
    Acknowledgement, AcknowledgementReceipt, Agreement, Credentials, LoginResponse, Page,
    PasswordChange, RecoveryCodes, TotpConfirmation, TotpEnrolment, User,
};

use crate::client_address::ClientAddress;
use crate::error::ApiResult;
use crate::extract::{Caller, EnrollingCaller, Json, PageQuery, Query};
use crate::request_id;

pub async fn login(
    State(vault): State<Arc<Vault>>,
    ClientAddress(source): ClientAddress,
    Json(credentials): Json<Credentials>,
) -> ApiResult<axum::Json<LoginResponse>> {
    Ok(axum::Json(
        vault
            .login(credentials, &request_id::current(), source)
            .await?,
    ))
}

pub async fn logout(
    State(vault): State<Arc<Vault>>,
    caller: EnrollingCaller,
) -> ApiResult<StatusCode> {
    vault.logout(&caller.principal, &caller.ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(
    State(vault): State<Arc<Vault>>,
    caller: EnrollingCaller,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(vault.me(&caller.principal).await?))
}

pub async fn my_cases(
    State(vault): State<Arc<Vault>>,
    c: Caller,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<CaseReach>>> {
    Ok(axum::Json(
        vault.my_cases(&c.principal, &c.ctx, &q.page()?).await?,
    ))
}

pub async fn start_totp(
    State(vault): State<Arc<Vault>>,
    caller: EnrollingCaller,
) -> ApiResult<axum::Json<TotpEnrolment>> {
    Ok(axum::Json(
        vault
            .start_totp_enrolment(&caller.principal, &caller.ctx)
            .await?,
    ))
}

pub async fn confirm_totp(
    State(vault): State<Arc<Vault>>,
    caller: EnrollingCaller,
    Json(confirmation): Json<TotpConfirmation>,
) -> ApiResult<axum::Json<RecoveryCodes>> {
    Ok(axum::Json(
        vault
            .confirm_totp_enrolment(&caller.principal, &caller.ctx, confirmation)
            .await?,
    ))
}

pub async fn change_password(
    State(vault): State<Arc<Vault>>,
    caller: Caller,
    Json(change): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    vault
        .change_password(&caller.principal, &caller.ctx, change)
        .await?;
    Ok(StatusCode::NO_CONTENT)
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
