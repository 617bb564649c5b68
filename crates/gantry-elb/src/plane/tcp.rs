//! The network load balancer's forwarder: each connection to a target the group may route to.

use super::{first_action, listener, weighted, How, Picker};
use crate::model::Action;
use crate::Elb;
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn serve(
    elb: Arc<Elb>,
    arn: String,
    socket: tokio::net::TcpListener,
    picker: Arc<Picker>,
) {
    loop {
        let (mut inbound, peer) = match socket.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(listener = %arn, error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (elb, arn, picker) = (elb.clone(), arn.clone(), picker.clone());
        tokio::spawn(async move {
            let Some(l) = listener(&elb, &arn) else {
                return;
            };
            let Some(Action::Forward { groups }) = first_action(&l) else {
                return;
            };
            let Some(group) = weighted(groups) else {
                return;
            };
            let source = match elb.snapshot().get(group) {
                Some(crate::model::Resource::Group(g)) if g.sticky_source_ip() => {
                    Some(super::digest(&peer.ip()))
                }
                _ => None,
            };
            let how = How {
                least_outstanding: false,
                sticky: &|_| false,
                source,
                slow_start: None,
            };
            let Some((target, _flight)) = picker.pick(&elb, group, how) else {
                return;
            };
            let connect = tokio::net::TcpStream::connect((target.id.as_str(), target.port));
            let Ok(Ok(mut outbound)) = tokio::time::timeout(Duration::from_secs(10), connect).await
            else {
                return;
            };
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}
