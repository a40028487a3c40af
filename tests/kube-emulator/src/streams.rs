//! Exec, attach and port-forward over WebSocket, in the channel protocol of
//! `v4.channel.k8s.io` / `v5.channel.k8s.io`: each binary frame starts with
//! its channel (0 stdin, 1 stdout, 2 stderr, 3 status, 255 close in v5).

use crate::kubelet::{Running, write_stdin};
use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

/// The protocols offered for exec and attach, newest first.
pub const CHANNEL_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// A frame on `channel`.
pub fn frame(channel: u8, bytes: &[u8]) -> Message {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.push(channel);
    v.extend_from_slice(bytes);
    Message::Binary(v.into())
}

/// The status frame for an exit code.
pub fn exit_status(code: i32) -> Message {
    let status = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": format!("command terminated with non-zero exit code: error executing command [...], exit code {code}"),
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
    };
    frame(3, status.to_string().as_bytes())
}

/// A close frame with status 1000, as the API server ends a finished stream
/// (kubectl reports a close without a status as an error).
pub fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame { code: 1000, reason: "".into() }))
}

/// Attaches `socket` to a running container.
pub async fn attach(socket: WebSocket, running: Arc<Running>) {
    let (mut tx, mut rx) = socket.split();
    let mut out = running.output.subscribe();
    let mut cut = running.cut.subscribe();
    loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(Message::Binary(b))) if b.first() == Some(&0) => {
                    write_stdin(&running, &b[1..]).await;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            o = out.recv() => match o {
                Ok((ch, Some(bytes))) => {
                    if tx.send(frame(ch, &bytes)).await.is_err() {
                        return;
                    }
                }
                Ok((_, None)) => {
                    let _ = tx.send(exit_status(0)).await;
                    let _ = tx.send(normal_close()).await;
                    return;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // A cut drops the connection without a goodbye, as a broken network would.
            _ = cut.recv() => return,
        }
    }
}

/// Runs `command` as a new process in the container's environment and
/// connects it to `socket`.
pub async fn exec(socket: WebSocket, command: Vec<String>, running: Option<Arc<Running>>) {
    let (mut tx, mut rx) = socket.split();
    let Some((program, args)) = command.split_first() else {
        let _ = tx.send(exit_status(126)).await;
        return;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).kill_on_drop(true);
    if let Some(r) = &running {
        cmd.envs(r.env());
    }
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(frame(2, format!("exec failed: {e}\n").as_bytes())).await;
            let _ = tx.send(exit_status(127)).await;
            return;
        }
    };
    let mut stdin = child.stdin.take();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(64);
    let mut pumps = Vec::new();
    for (ch, pipe) in [
        (1u8, child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)),
        (2u8, child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)),
    ] {
        let Some(mut pipe) = pipe else { continue };
        let out_tx = out_tx.clone();
        pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 || out_tx.send((ch, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(out_tx);
    let mut cut = match &running {
        Some(r) => r.cut.subscribe(),
        None => broadcast::channel(1).1,
    };
    let mut output_open = true;
    loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(Message::Binary(b))) => match b.first() {
                    Some(0) => {
                        if let Some(s) = stdin.as_mut() {
                            let _ = s.write_all(&b[1..]).await;
                            let _ = s.flush().await;
                        }
                    }
                    Some(255) if b.get(1) == Some(&0) => stdin = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    let _ = child.start_kill();
                    return;
                }
                Some(Ok(_)) => {}
            },
            o = out_rx.recv(), if output_open => match o {
                Some((ch, bytes)) => {
                    if tx.send(frame(ch, &bytes)).await.is_err() {
                        let _ = child.start_kill();
                        return;
                    }
                }
                None => output_open = false,
            },
            status = child.wait(), if !output_open => {
                let code = status.ok().and_then(|s| s.code()).unwrap_or(137);
                let _ = tx.send(exit_status(code)).await;
                let _ = tx.send(normal_close()).await;
                return;
            }
            _ = cut.recv() => {
                let _ = child.start_kill();
                return;
            }
        }
    }
}

/// Forwards `port` of 127.0.0.1 over `socket` (data on channel 0, errors on 1).
pub async fn port_forward(socket: WebSocket, port: u16, running: Option<Arc<Running>>) {
    let (mut tx, mut rx) = socket.split();
    let prefix = port.to_le_bytes();
    if tx.send(frame(0, &prefix)).await.is_err() || tx.send(frame(1, &prefix)).await.is_err() {
        return;
    }
    let mut conn = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(frame(1, format!("error forwarding port {port}: {e}").as_bytes())).await;
            return;
        }
    };
    let mut cut = match &running {
        Some(r) => r.cut.subscribe(),
        None => broadcast::channel(1).1,
    };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(Message::Binary(b))) if b.first() == Some(&0) => {
                    if conn.write_all(&b[1..]).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            n = conn.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = tx.close().await;
                    return;
                }
                Ok(n) => {
                    if tx.send(frame(0, &buf[..n])).await.is_err() {
                        return;
                    }
                }
            },
            _ = cut.recv() => return,
        }
    }
}
