//! Writes for the second factor. Each one states its precondition in its WHERE clause and reports
//! `Conflict` when no row matched, so concurrent requests cannot both succeed (one writer, one
//! transaction per batch).

use super::Conn;

use crate::Mutation;
use crate::StoreError;

fn one_row(affected: u64, what: &'static str) -> Result<(), StoreError> {
    if affected == 0 {
        Err(StoreError::Conflict(what))
    } else {
        Ok(())
    }
}

pub(super) async fn apply(conn: &mut Conn, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::BeginTotp {
            user_id,
            secret,
            at,
        } => {
            let done = sqlx::query(
                "INSERT INTO user_totp (user_id, secret, confirmed_at, last_step, created_at) \
                 VALUES ($1, $2, NULL, NULL, $3) ON CONFLICT (user_id) DO UPDATE \
                 SET secret = excluded.secret, last_step = NULL, created_at = excluded.created_at \
                 WHERE user_totp.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(secret)
            .bind(at)
            .execute(conn)
            .await?;
            one_row(done.rows_affected(), "a second factor is already confirmed")
        }
        Mutation::ConfirmTotp {
            user_id,
            step,
            recovery_code_hashes,
            session_token_hash,
            at,
        } => {
            let done = sqlx::query(
                "UPDATE user_totp SET confirmed_at = $2, last_step = $3 \
                 WHERE user_id = $1 AND confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(at)
            .bind(step)
            .execute(&mut *conn)
            .await?;
            one_row(done.rows_affected(), "no pending second factor")?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
            for hash in recovery_code_hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(hash)
                    .execute(&mut *conn)
                    .await?;
            }
            if let Some(token_hash) = session_token_hash {
                sqlx::query(
                    "UPDATE sessions SET enrolment_only = FALSE WHERE token_hash = $1 AND user_id = $2",
                )
                .bind(token_hash)
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }
        Mutation::UseTotpStep { user_id, step } => {
            let done = sqlx::query(
                "UPDATE user_totp SET last_step = $2 WHERE user_id = $1 \
                 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)",
            )
            .bind(user_id)
            .bind(step)
            .execute(conn)
            .await?;
            one_row(done.rows_affected(), "time step already used")
        }
        Mutation::UseRecoveryCode {
            user_id,
            code_hash,
            at,
        } => {
            let done = sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 \
                 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(code_hash)
            .bind(at)
            .execute(conn)
            .await?;
            one_row(done.rows_affected(), "recovery code unknown or used")
        }
        Mutation::ResetTotp { user_id } => {
            let done = sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
            one_row(done.rows_affected(), "no second factor to reset")?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
        _ => Err(StoreError::Corrupt("not a second-factor mutation".into())),
    }
}
