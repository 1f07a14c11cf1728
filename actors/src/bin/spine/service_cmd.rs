//! The service commands: `spine request SERVICE INTERACTION --body FILE`,
//! the reference-service shortcuts (`spine pds`, `spine scr`, `spine eps`)
//! and `spine provide` (a demonstration external provider that echoes).
//!
//! Invariants:
//! - Output is readable text by default and the service's JSON with
//!   `--json`; a refusal goes to stderr as `spine: error [CODE]: ...` with
//!   the service's stable code (`ID_NHS_NUMBER_CHECK_DIGIT`,
//!   `PDS_VERSION_CONFLICT`, `SVC_NOT_ACCREDITED`, ...) and exits 5.
//! - Bodies are built with serde_json, never by string pasting, so no
//!   argument can change a request's structure.

use std::path::PathBuf;

use bytes::Bytes;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use spine_client::{ClientError, RequestOptions, ServiceFault};

use crate::client_cmd::{connect_client, failed_client, Connection, Env};
use crate::exit::{write_stdout, Exit, Failure};

/// Options every service command shares.
#[derive(Debug, Args)]
pub struct ServiceOptions {
    #[command(flatten)]
    pub conn: Connection,
    /// Act as this accredited system (ASID); default: your organisation's
    #[arg(long, value_name = "ASID")]
    pub asid: Option<String>,
    /// Message id, for duplicate elimination on reliable interactions
    #[arg(long, value_name = "ID")]
    pub message_id: Option<String>,
}

/// `spine request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    #[command(flatten)]
    pub opts: ServiceOptions,
    /// The service (pds, scr, eps, or an external one such as ers)
    pub service: String,
    /// The interaction: its full id, short id (QUPA_IN040000UK32) or operation (get)
    pub interaction: String,
    /// The request body (JSON for the reference services); - for stdin
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,
}

/// `spine pds ...`.
#[derive(Debug, Subcommand)]
pub enum PdsCommand {
    /// A patient by NHS number.
    Get {
        #[command(flatten)]
        opts: ServiceOptions,
        /// The NHS number (10 digits, spaces allowed)
        nhs_number: String,
    },
    /// Patients matching every criterion given.
    Search {
        #[command(flatten)]
        opts: ServiceOptions,
        /// Family name
        #[arg(long)]
        family: Option<String>,
        /// Given name
        #[arg(long)]
        given: Option<String>,
        /// Date of birth, YYYY-MM-DD
        #[arg(long, value_name = "DATE")]
        birth_date: Option<String>,
        /// Postcode
        #[arg(long)]
        postcode: Option<String>,
    },
    /// Change a patient's details; --version is the version you last read.
    Update {
        #[command(flatten)]
        opts: ServiceOptions,
        /// The NHS number
        nhs_number: String,
        /// The version your change is based on
        #[arg(long, value_name = "N")]
        version: u64,
        /// New given name
        #[arg(long)]
        given: Option<String>,
        /// New family name
        #[arg(long)]
        family: Option<String>,
        /// New address line
        #[arg(long)]
        address: Option<String>,
        /// New postcode
        #[arg(long)]
        postcode: Option<String>,
        /// New registered GP practice (ODS code)
        #[arg(long, value_name = "ODS")]
        gp: Option<String>,
        /// New nominated pharmacy (ODS code)
        #[arg(long, value_name = "ODS")]
        pharmacy: Option<String>,
    },
}

/// `spine scr ...`.
#[derive(Debug, Subcommand)]
pub enum ScrCommand {
    /// Upload a replacement summary (a JSON document).
    Put {
        #[command(flatten)]
        opts: ServiceOptions,
        /// The NHS number
        nhs_number: String,
        /// The summary as a JSON file
        #[arg(long, value_name = "FILE", conflicts_with = "data")]
        file: Option<PathBuf>,
        /// The summary as JSON text
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
    },
    /// The latest summary.
    Get {
        #[command(flatten)]
        opts: ServiceOptions,
        /// The NHS number
        nhs_number: String,
    },
}

/// `spine eps ...`.
#[derive(Debug, Subcommand)]
pub enum EpsCommand {
    /// Create a prescription (as the prescriber).
    Create {
        #[command(flatten)]
        opts: ServiceOptions,
        /// Prescription id
        #[arg(long, value_name = "ID")]
        id: String,
        /// The patient's NHS number
        #[arg(long, value_name = "NHS_NUMBER")]
        nhs_number: String,
        /// An item (repeat for several)
        #[arg(long = "item", value_name = "TEXT", required = true)]
        items: Vec<String>,
        /// Nominated pharmacy (default: the patient's nomination in PDS)
        #[arg(long, value_name = "ODS")]
        pharmacy: Option<String>,
    },
    /// Release prescriptions to your pharmacy: those nominated to it, or one by id.
    Release {
        #[command(flatten)]
        opts: ServiceOptions,
        /// Release this prescription only
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
    /// Notify that a released prescription was dispensed.
    Dispense {
        #[command(flatten)]
        opts: ServiceOptions,
        /// Prescription id
        id: String,
    },
    /// Claim for a dispensed prescription.
    Claim {
        #[command(flatten)]
        opts: ServiceOptions,
        /// Prescription id
        id: String,
    },
    /// Show a prescription.
    Get {
        #[command(flatten)]
        opts: ServiceOptions,
        /// Prescription id
        id: String,
    },
}

/// `spine provide`.
#[derive(Debug, Args)]
pub struct ProvideArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The service to provide (your mailbox must be allowed to)
    pub service: String,
    /// A name for this provider, echoed in every answer
    #[arg(long, default_value = "provider")]
    pub tag: String,
    /// Stop after answering this many requests (default: run until killed)
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Which service command.
#[derive(Debug)]
pub enum ServiceCommand<'a> {
    Request(&'a RequestArgs),
    Pds(&'a PdsCommand),
    Scr(&'a ScrCommand),
    Eps(&'a EpsCommand),
    Provide(&'a ProvideArgs),
}

/// Runs a service command to completion.
pub fn run(command: ServiceCommand<'_>, env: Env<'_>) -> Result<Exit, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::plain(
                Exit::Runtime,
                "RUNTIME_START_FAILED",
                format!("cannot start: {e}"),
            )
        })?;
    runtime.block_on(async move {
        match command {
            ServiceCommand::Request(a) => request(a, env).await,
            ServiceCommand::Pds(c) => pds(c, env).await,
            ServiceCommand::Scr(c) => scr(c, env).await,
            ServiceCommand::Eps(c) => eps(c, env).await,
            ServiceCommand::Provide(a) => provide(a, env).await,
        }
    })
}

/// The stable codes a service may answer with; anything else is shown
/// as `SERVICE_REFUSED` with the provider's own code in the message.
const SERVICE_CODES: &[&str] = &[
    "SVC_UNKNOWN_INTERACTION",
    "SVC_WRONG_SERVICE",
    "SVC_UNKNOWN_SERVICE",
    "SVC_NOT_ACCREDITED",
    "SVC_NO_PROVIDER",
    "SVC_BUSY",
    "SVC_TIMEOUT",
    "SVC_PROVIDER_LOST",
    "SVC_TOO_MANY_PROVIDERS",
    "SVC_BAD_REQUEST",
    "SVC_BODY_TOO_LARGE",
    "SVC_UNKNOWN_OPERATION",
    "SVC_STATE_LIMIT",
    "SVC_UNAVAILABLE",
    "SVC_PROVIDER_ERROR",
    "ID_NHS_NUMBER_LENGTH",
    "ID_NHS_NUMBER_DIGITS",
    "ID_NHS_NUMBER_CHECK_DIGIT",
    "ID_ODS_INVALID",
    "PDS_PATIENT_NOT_FOUND",
    "PDS_VERSION_CONFLICT",
    "SCR_NOT_FOUND",
    "EPS_NOT_FOUND",
    "EPS_EXISTS",
    "EPS_INVALID_TRANSITION",
    "EPS_WRONG_PHARMACY",
];

fn refused(fault: &ServiceFault) -> Failure {
    match SERVICE_CODES.iter().find(|c| **c == fault.code) {
        Some(code) => Failure::plain(Exit::Refused, code, fault.message.clone()),
        None => Failure::plain(
            Exit::Refused,
            "SERVICE_REFUSED",
            format!("{} ({})", fault.message, fault.code),
        ),
    }
}

fn failed(e: ClientError) -> Failure {
    match &e {
        ClientError::Service(fault) => refused(fault),
        _ => failed_client(e),
    }
}

async fn call(
    opts: &ServiceOptions,
    env: Env<'_>,
    service: &str,
    interaction: &str,
    body: Bytes,
) -> Result<Bytes, Failure> {
    let client = connect_client(&opts.conn, env).await?;
    let options = RequestOptions {
        asid: opts.asid.clone(),
        message_id: opts.message_id.clone(),
    };
    let result = client.request(service, interaction, body, options).await;
    client.close().await;
    result.map_err(failed)
}

async fn call_json(
    opts: &ServiceOptions,
    env: Env<'_>,
    service: &str,
    operation: &str,
    body: &Value,
) -> Result<Value, Failure> {
    let bytes = call(opts, env, service, operation, Bytes::from(body.to_string())).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Failure::plain(
            Exit::Runtime,
            "SERVICE_ANSWER_INVALID",
            format!("the service answered with invalid JSON: {e}"),
        )
    })
}

fn out_json(v: &Value) -> Result<Exit, Failure> {
    write_stdout(&format!("{v}\n"))?;
    Ok(Exit::Ok)
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn spaced(nhs: &str) -> String {
    match (nhs.get(..3), nhs.get(3..6), nhs.get(6..)) {
        (Some(a), Some(b), Some(c)) => format!("{a} {b} {c}"),
        _ => nhs.to_owned(),
    }
}

fn patient_text(p: &Value) -> String {
    format!(
        "NHS number   {}\nName         {} {}\nBorn         {} ({})\nAddress      {}, {}\nGP practice  {}\nPharmacy     {}\nVersion      {}\n",
        spaced(&text(p, "nhs_number")),
        text(p, "given"),
        text(p, "family"),
        text(p, "birth_date"),
        text(p, "gender"),
        text(p, "address"),
        text(p, "postcode"),
        text(p, "gp_ods"),
        text(p, "nominated_pharmacy"),
        text(p, "version"),
    )
}

fn prescription_text(p: &Value) -> String {
    let items: Vec<String> = p["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}  {}  patient {}  pharmacy {}{}  (version {})\n    {}\n",
        text(p, "id"),
        text(p, "status"),
        spaced(&text(p, "nhs_number")),
        text(p, "nominated_pharmacy"),
        match p["released_to"].as_str() {
            Some(to) => format!(", released to {to}"),
            None => String::new(),
        },
        text(p, "version"),
        items.join("; "),
    )
}

async fn request(a: &RequestArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let body = if a.body.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| {
            Failure::plain(
                Exit::Usage,
                "CLI_FILE_UNREADABLE",
                format!("cannot read stdin: {e}"),
            )
        })?;
        buf
    } else {
        std::fs::read(&a.body).map_err(|e| {
            Failure::plain(
                Exit::Usage,
                "CLI_FILE_UNREADABLE",
                format!("cannot read {}: {e}", a.body.display()),
            )
        })?
    };
    let answer = call(&a.opts, env, &a.service, &a.interaction, Bytes::from(body)).await?;
    match serde_json::from_slice::<Value>(&answer) {
        Ok(v) if a.opts.conn.json => out_json(&v),
        Ok(v) => {
            let pretty = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
            write_stdout(&format!("{pretty}\n"))?;
            Ok(Exit::Ok)
        }
        Err(_) => {
            write_stdout(&String::from_utf8_lossy(&answer))?;
            Ok(Exit::Ok)
        }
    }
}

async fn pds(c: &PdsCommand, env: Env<'_>) -> Result<Exit, Failure> {
    match c {
        PdsCommand::Get { opts, nhs_number } => {
            let p = call_json(
                opts,
                env,
                "pds",
                "get",
                &json!({ "nhs_number": nhs_number }),
            )
            .await?;
            if opts.conn.json {
                return out_json(&p);
            }
            write_stdout(&patient_text(&p))?;
        }
        PdsCommand::Search {
            opts,
            family,
            given,
            birth_date,
            postcode,
        } => {
            let mut q = serde_json::Map::new();
            for (k, v) in [
                ("family", family),
                ("given", given),
                ("birth_date", birth_date),
                ("postcode", postcode),
            ] {
                if let Some(v) = v {
                    q.insert(k.into(), json!(v));
                }
            }
            let found = call_json(opts, env, "pds", "search", &Value::Object(q)).await?;
            if opts.conn.json {
                return out_json(&found);
            }
            let patients = found["patients"].as_array().cloned().unwrap_or_default();
            let mut out = format!("{} patient(s)\n", patients.len());
            for p in &patients {
                out.push_str(&format!(
                    "{}  {} {}  born {}  {}\n",
                    spaced(&text(p, "nhs_number")),
                    text(p, "given"),
                    text(p, "family"),
                    text(p, "birth_date"),
                    text(p, "postcode")
                ));
            }
            write_stdout(&out)?;
        }
        PdsCommand::Update {
            opts,
            nhs_number,
            version,
            given,
            family,
            address,
            postcode,
            gp,
            pharmacy,
        } => {
            let mut changes = serde_json::Map::new();
            for (k, v) in [
                ("given", given),
                ("family", family),
                ("address", address),
                ("postcode", postcode),
                ("gp_ods", gp),
                ("nominated_pharmacy", pharmacy),
            ] {
                if let Some(v) = v {
                    changes.insert(k.into(), json!(v));
                }
            }
            let body = json!({ "nhs_number": nhs_number, "version": version, "changes": changes });
            let p = call_json(opts, env, "pds", "update", &body).await?;
            if opts.conn.json {
                return out_json(&p);
            }
            write_stdout(&format!("updated\n{}", patient_text(&p)))?;
        }
    }
    Ok(Exit::Ok)
}

async fn scr(c: &ScrCommand, env: Env<'_>) -> Result<Exit, Failure> {
    let summary_text = |s: &Value| {
        format!(
            "NHS number   {}\nVersion      {}\nUploaded by  {} at {}\nSummary      {}\n",
            spaced(&text(s, "nhs_number")),
            text(s, "version"),
            text(s, "author_ods"),
            text(s, "uploaded_at"),
            text(s, "content"),
        )
    };
    match c {
        ScrCommand::Put {
            opts,
            nhs_number,
            file,
            data,
        } => {
            let raw = match (file, data) {
                (Some(path), None) => std::fs::read_to_string(path).map_err(|e| {
                    Failure::plain(
                        Exit::Usage,
                        "CLI_FILE_UNREADABLE",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?,
                (None, Some(d)) => d.clone(),
                _ => {
                    return Err(Failure::plain(
                        Exit::Usage,
                        "CLI_CONTENT_MISSING",
                        "give the summary with --file PATH or --data JSON",
                    ))
                }
            };
            let summary: Value = serde_json::from_str(&raw).map_err(|e| {
                Failure::plain(
                    Exit::Usage,
                    "CLI_ARGUMENT_INVALID",
                    format!("the summary must be JSON: {e}"),
                )
            })?;
            let s = call_json(
                opts,
                env,
                "scr",
                "upload",
                &json!({ "nhs_number": nhs_number, "summary": summary }),
            )
            .await?;
            if opts.conn.json {
                return out_json(&s);
            }
            write_stdout(&format!("uploaded\n{}", summary_text(&s)))?;
        }
        ScrCommand::Get { opts, nhs_number } => {
            let s = call_json(
                opts,
                env,
                "scr",
                "get",
                &json!({ "nhs_number": nhs_number }),
            )
            .await?;
            if opts.conn.json {
                return out_json(&s);
            }
            write_stdout(&summary_text(&s))?;
        }
    }
    Ok(Exit::Ok)
}

async fn eps(c: &EpsCommand, env: Env<'_>) -> Result<Exit, Failure> {
    let (opts, operation, body) = match c {
        EpsCommand::Create {
            opts,
            id,
            nhs_number,
            items,
            pharmacy,
        } => {
            let mut b = json!({ "id": id, "nhs_number": nhs_number, "items": items });
            if let Some(p) = pharmacy {
                b["nominated_pharmacy"] = json!(p);
            }
            (opts, "create", b)
        }
        EpsCommand::Release { opts, id } => (
            opts,
            "release",
            match id {
                Some(id) => json!({ "id": id }),
                None => json!({}),
            },
        ),
        EpsCommand::Dispense { opts, id } => (opts, "dispense", json!({ "id": id })),
        EpsCommand::Claim { opts, id } => (opts, "claim", json!({ "id": id })),
        EpsCommand::Get { opts, id } => (opts, "get", json!({ "id": id })),
    };
    let answer = call_json(opts, env, "eps", operation, &body).await?;
    if opts.conn.json {
        return out_json(&answer);
    }
    let out = match answer["released"].as_array() {
        Some(list) => {
            let mut out = format!("{} prescription(s) released\n", list.len());
            for p in list {
                out.push_str(&prescription_text(p));
            }
            out
        }
        None => prescription_text(&answer),
    };
    write_stdout(&out)?;
    Ok(Exit::Ok)
}

async fn provide(a: &ProvideArgs, env: Env<'_>) -> Result<Exit, Failure> {
    let client = connect_client(&a.conn, env).await?;
    let mut calls = client
        .register_provider(&a.service, 1024)
        .await
        .map_err(failed)?;
    let ready = json!({ "event": "registered", "service": calls.service, "provider_id": calls.provider_id, "tag": a.tag });
    write_stdout(&format!("{ready}\n"))?;
    let mut served = 0u64;
    while a.count.is_none_or(|n| served < n) {
        let Some(call) = calls.next().await else {
            return Err(Failure::plain(
                Exit::Runtime,
                "CLIENT_CONNECTION_LOST",
                "the connection to the node ended",
            ));
        };
        let request: Value = serde_json::from_slice(&call.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&call.body).into_owned()));
        let answer = json!({
            "provider": a.tag,
            "operation": call.operation,
            "interaction": call.interaction,
            "asid": call.asid,
            "ods": call.ods,
            "request": request,
        });
        calls
            .reply(call.correlation, Ok(Bytes::from(answer.to_string())))
            .await
            .map_err(failed)?;
        served += 1;
    }
    client.close().await;
    Ok(Exit::Ok)
}
