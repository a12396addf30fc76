//! Handoff decisions between zone processes (`RELAY_FORMAT.md` section 5, "Deciding"): the
//! record in the directory is written once, by whichever side comes first, and both sides
//! act on it, so a lost answer or a dead receiver leaves exactly one owner.

use mmo_core::relay::PeerMessage;
use mmo_net::relay::directory::{TransferDecision, ZoneLeases};

use super::*;

/// The decision scripts against a real Redis: the first writer wins, repeats return what
/// is recorded, a stale lease on either side records nothing, and only the claimer can
/// revoke its claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_decision_is_recorded_once_by_whichever_side_comes_first() {
    let Some(redis_url) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    let world = format!("decisions-{:08x}", rand_suffix());
    let sender: u64 = 0xa11ce;
    let receiver: u64 = 0xb0b;
    let sender_leases = ZoneLeases::acquire(&redis_url, &world, sender, 2, [0])
        .await
        .unwrap();
    let receiver_leases = ZoneLeases::acquire(&redis_url, &world, receiver, 2, [1])
        .await
        .unwrap();
    let token = sender_leases.token(0).expect("zone 0 leased");
    let at_sender = sender_leases.fencing();
    let at_receiver = receiver_leases.fencing();
    let taken = TransferDecision::Taken {
        by_process: receiver,
    };
    let claim = |id: u64, from_process: u64, from_token: u64, to_zone: u16, me: u64| {
        let at_receiver = at_receiver.clone();
        async move {
            at_receiver
                .claim_transfer(id, 0, from_process, from_token, to_zone, me)
                .await
                .unwrap()
        }
    };

    // Claimed first: the sender's abort finds it taken; a repeated claim says the same.
    assert_eq!(claim(1, sender, token, 1, receiver).await, taken);
    assert_eq!(at_sender.abort_transfer(1).await.unwrap(), taken);
    assert_eq!(claim(1, sender, token, 1, receiver).await, taken);
    // Aborted first: the receiver's claim finds it aborted.
    assert_eq!(
        at_sender.abort_transfer(2).await.unwrap(),
        TransferDecision::Aborted
    );
    assert_eq!(
        claim(2, sender, token, 1, receiver).await,
        TransferDecision::Aborted
    );
    // A claim naming another lease of the sender records nothing: the sender can still
    // abort.
    assert_eq!(
        claim(3, sender, token + 1, 1, receiver).await,
        TransferDecision::StaleLease
    );
    assert_eq!(
        claim(3, 0xdead, token, 1, receiver).await,
        TransferDecision::StaleLease
    );
    // Nor does a claim by a process that does not hold the receiving zone's lease (another
    // process hearing the zone's subject), or into a zone it holds no lease on.
    assert_eq!(
        claim(3, sender, token, 1, 0xdead).await,
        TransferDecision::NotOwner
    );
    assert_eq!(
        claim(3, sender, token, 0, receiver).await,
        TransferDecision::NotOwner
    );
    assert_eq!(
        at_sender.abort_transfer(3).await.unwrap(),
        TransferDecision::Aborted
    );
    // Only the claimer turns its claim to aborted.
    assert_eq!(
        at_receiver.revoke_transfer(1, 0xdead).await.unwrap(),
        taken,
        "another process cannot revoke"
    );
    assert_eq!(
        at_receiver.revoke_transfer(1, receiver).await.unwrap(),
        TransferDecision::Aborted
    );
    assert_eq!(
        at_sender.abort_transfer(1).await.unwrap(),
        TransferDecision::Aborted
    );
    assert_eq!(
        at_receiver.revoke_transfer(4, receiver).await.unwrap(),
        TransferDecision::Undecided
    );
    // The record expires (60 s).
    let mut redis = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("mmo:{world}:transfer:{:016x}", 2))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&ttl_ms), "expires: {ttl_ms} ms");
    sender_leases.release().await;
    receiver_leases.release().await;
}

/// A stand-in for zone 1's process that claims every handoff in the directory and never
/// answers (as if its answers were lost): the sender asks the directory after 2 s, finds the
/// handoff taken, and hands the connection over, so the gateway sends Alice's traffic to
/// the stand-in; the sender does not close her and saves nothing after the border (the
/// receiver owns her). The stand-in then stays silent, as a receiver killed right after
/// its claim would: the gateway restarts her session from her last save.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_claimed_but_never_answered_is_handed_over_by_the_record() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis_url) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let SplitWorld {
            relay,
            config: _,
            store,
            zones_0,
            zones_1,
            gateway,
            trust,
            zone,
            mut interval,
            tick_s,
        } = split_world(&url, "claimed-unanswered", Duration::from_secs(1)).await;
        // Zone 1's process dies; the stand-in takes its lease once it expired.
        drop(zones_1);
        let stand_in: u64 = 0x005e_c00d;
        let leases = {
            let mut taken = None;
            for _ in 0..100 {
                if let Ok(leases) =
                    ZoneLeases::acquire(&redis_url, &relay.world, stand_in, 2, [1]).await
                {
                    taken = Some(leases);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            taken.expect("zone 1's lease expired within 10 s")
        };
        let fencing = leases.fencing();
        let nats = async_nats::connect(url.as_str()).await.unwrap();
        let mut handoffs = nats
            .subscribe(format!("mmo.{}.peer.zone.1", relay.world))
            .await
            .unwrap();
        let mut to_stand_in = nats
            .subscribe(format!("mmo.{}.zproc.{stand_in:016x}", relay.world))
            .await
            .unwrap();
        nats.flush().await.unwrap();
        let (claimed_tx, mut claimed) = tokio::sync::oneshot::channel();
        let claimer = tokio::spawn(async move {
            let mut claimed_tx = Some(claimed_tx);
            while let Some(message) = futures_util::StreamExt::next(&mut handoffs).await {
                let Ok(PeerMessage::Handoff(h)) = PeerMessage::decode(&message.payload) else {
                    continue;
                };
                let decision = fencing
                    .claim_transfer(
                        h.transfer_id,
                        h.from_zone,
                        h.from_process,
                        h.from_token,
                        h.to_zone,
                        stand_in,
                    )
                    .await;
                if let Some(tx) = claimed_tx.take() {
                    let _ = tx.send((h.transfer_id, decision, std::time::Instant::now()));
                }
            }
        });
        let found_before = common::counter(
            "mmo_relay_events_total",
            &[("event", "handoff_found_taken")],
        );
        let unanswered_before =
            common::counter("mmo_relay_events_total", &[("event", "handoff_unanswered")]);

        let mut alice = connect(&gateway, trust, &zone, "a").await;
        until_ready(&mut [&mut alice], &mut interval, tick_s).await;
        let east = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        let mut claim = None;
        for _ in 0..300 {
            interval.tick().await;
            alice.tick(east, tick_s);
            if let Ok(c) = claimed.try_recv() {
                claim = Some(c);
                break;
            }
        }
        let (transfer_id, decision, claimed_at) = claim.expect("she crossed into zone 1");
        assert_eq!(
            decision.map_err(|e| e.to_string()),
            Ok(TransferDecision::Taken {
                by_process: stand_in
            })
        );
        // The gateway sends her traffic to the stand-in once the sender handed her over.
        let mut switched = false;
        let mut saved_before = None;
        for i in 0..150 {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick_s);
            if i == 10 {
                // Her zone's last periodic save has landed by now; the sender decides
                // at 2 s.
                saved_before = store.character_of("alice");
            }
            if tokio::time::timeout(
                Duration::ZERO,
                futures_util::StreamExt::next(&mut to_stand_in),
            )
            .await
            .is_ok_and(|m| m.is_some())
            {
                switched = true;
                break;
            }
        }
        let waited = claimed_at.elapsed();
        assert!(
            switched,
            "the gateway relays her to the process that claimed her"
        );
        assert!(
            waited >= Duration::from_millis(1_500) && waited < Duration::from_secs(4),
            "handed over after the sender's 2 s wait: {waited:?}"
        );
        assert!(
            common::counter(
                "mmo_relay_events_total",
                &[("event", "handoff_found_taken")]
            ) > found_before,
            "counted as found taken"
        );
        assert_eq!(
            common::counter("mmo_relay_events_total", &[("event", "handoff_unanswered")]),
            unanswered_before,
            "not given up"
        );
        assert!(
            !alice
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Disconnected { .. })),
            "not closed by the sender: {:?}",
            alice.events.last()
        );
        // The sender saved nothing after the handoff (a logout save would land within a
        // second): the receiver owns her.
        for _ in 0..30 {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick_s);
        }
        let saved_before = saved_before.expect("saved every second");
        let after = store.character_of("alice").expect("stored");
        assert_eq!(
            after.version, saved_before.version,
            "no save by the sender after transfer {transfer_id:x}"
        );

        // The stand-in never serves her, like a receiver killed right after its claim: 3 s
        // after the switch the gateway restarts her session from her last save, in the
        // zone of her last ticket (zone 0's, the stand-in sent none), without a disconnect.
        let mut rejoined_at = None;
        for _ in 0..300 {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick_s);
            if let Some(ClientEvent::Rejoined { spawn, .. }) = alice
                .events
                .iter()
                .find(|e| matches!(e, ClientEvent::Rejoined { .. }))
            {
                rejoined_at = Some(spawn.position_m);
                break;
            }
        }
        let rejoined_at = rejoined_at.unwrap_or_else(|| {
            let c = |e: &str| common::counter("mmo_relay_events_total", &[("event", e)]);
            panic!(
                "restarted from her last save within 10 s: rejoin_started {}, rejoin_opened {}; {:?}",
                c("rejoin_started"),
                c("rejoin_opened"),
                alice.events.last()
            )
        });
        assert!(
            (rejoined_at - after.position_m).length() < 0.05,
            "from her last save: {rejoined_at} vs {}",
            after.position_m
        );
        assert!(
            !alice
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Disconnected { .. })),
            "not disconnected: {:?}",
            alice.events.last()
        );
        claimer.abort();
        drop(leases);
        gateway.shutdown(Duration::from_secs(1)).await;
        zones_0.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 60 s");
}

/// A sender that dies after its handoff reached the receiver: a stand-in receiver answers
/// the gateway with item 0 `TakenOver`, carrying the sender's tail plus one chat frame the
/// sender "never got out"; when the sender has been silent for 3 s the gateway switches
/// to the stand-in without a `Moved`, delivers that frame to the client once, and relays
/// the client's datagrams to the stand-in; the client is not disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_senders_last_control_bytes_reach_the_client_through_the_receiver() {
    use mmo_core::control::{ChatChannel, ServerControl, encode_frame};
    use mmo_core::relay::{Batch, Item, StreamItem};
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let SplitWorld {
            relay,
            config: _,
            store: _,
            zones_0,
            zones_1,
            gateway,
            trust,
            zone,
            mut interval,
            tick_s,
        } = split_world(&url, "silent-sender", Duration::from_secs(1)).await;
        // Zone 1's handoffs go to the stand-in only.
        drop(zones_1);
        let stand_in: u64 = 0x005e_c00d;
        let stand_in_subject = format!("mmo.{}.zproc.{stand_in:016x}", relay.world);
        let nats = async_nats::connect(url.as_str()).await.unwrap();
        let mut handoffs = nats
            .subscribe(format!("mmo.{}.peer.zone.1", relay.world))
            .await
            .unwrap();
        let mut to_stand_in = nats.subscribe(stand_in_subject.clone()).await.unwrap();
        nats.flush().await.unwrap();

        let mut alice = connect(&gateway, trust, &zone, "a").await;
        until_ready(&mut [&mut alice], &mut interval, tick_s).await;
        let east = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        let mut handoff = None;
        for _ in 0..300 {
            interval.tick().await;
            alice.tick(east, tick_s);
            if let Ok(Some(message)) =
                tokio::time::timeout(Duration::ZERO, futures_util::StreamExt::next(&mut handoffs))
                    .await
                && let Ok(PeerMessage::Handoff(h)) = PeerMessage::decode(&message.payload)
            {
                handoff = Some(h);
                break;
            }
        }
        let h = handoff.expect("she crossed into zone 1");
        // The sender dies now (its relay task stops: silence, as after kill -9).
        drop(zones_0);
        let died = std::time::Instant::now();
        let said = "the sender's last words";
        let mut frame = Vec::new();
        encode_frame(
            &ServerControl::Chat {
                from_name: "Bob".to_owned(),
                from_entity: mmo_core::entity::EntityId(0),
                channel: ChatChannel::Global,
                text: said.to_owned(),
            },
            &mut frame,
        )
        .unwrap();
        let mut tail = h.sender_tail.clone();
        tail.items.push(StreamItem::Bytes(frame));
        let batch = Batch {
            gateway: h.gateway,
            reply_to: stand_in_subject.clone(),
            items: vec![Item::Stream {
                conn: h.gateway_conn,
                seq: 0,
                item: StreamItem::TakenOver(tail),
            }],
        }
        .encode()
        .unwrap();
        nats.publish(h.gateway_subject.clone(), batch.into())
            .await
            .unwrap();
        nats.flush().await.unwrap();

        let mut heard = Vec::new();
        let mut datagrams_to_stand_in = 0;
        let mut disconnected = false;
        while died.elapsed() < Duration::from_millis(5_500) {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick_s);
            for e in alice.events.drain(..) {
                match e {
                    ClientEvent::Chat { text, .. } if text == said => heard.push(died.elapsed()),
                    ClientEvent::Disconnected { .. } => disconnected = true,
                    _ => {}
                }
            }
            while let Ok(Some(message)) = tokio::time::timeout(
                Duration::ZERO,
                futures_util::StreamExt::next(&mut to_stand_in),
            )
            .await
            {
                let batch = Batch::decode(&message.payload).unwrap();
                datagrams_to_stand_in += batch
                    .items
                    .iter()
                    .filter(|i| matches!(i, Item::Datagram { .. }))
                    .count();
            }
        }
        println!("the sender's last frame heard at {heard:?} after its death");
        assert_eq!(heard.len(), 1, "the sender's last frame, once: {heard:?}");
        assert!(
            heard[0] >= Duration::from_millis(2_500),
            "switched after the sender's 3 s of silence: {:?}",
            heard[0]
        );
        assert!(!disconnected, "not closed");
        assert!(
            datagrams_to_stand_in > 10,
            "her datagrams go to the receiver: {datagrams_to_stand_in}"
        );
        gateway.shutdown(Duration::from_secs(1)).await;
    })
    .await
    .expect("finished within 60 s");
}

/// Another process hearing zone 1's handoffs refuses at once (as one that is stopping
/// would) while zone 1's real process claims the handoff: the sender does not believe the
/// refusal but records `aborted` unless the handoff was claimed, and acts on the record.
/// Whichever of the two was recorded first, Alice has exactly one owner: in zone 1's
/// process and still connected (`taken`), or closed by zone 0's process and nowhere else
/// (`aborted`). Believing the refusal would close her while zone 1's process has her.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_a_process_that_did_not_claim_is_checked_against_the_record() {
    use mmo_core::relay::HandoffAnswer;
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    let Some(redis_url) = service_url("MMO_TEST_REDIS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let SplitWorld {
            relay,
            config: _,
            store: _,
            zones_0,
            zones_1,
            gateway,
            trust,
            zone,
            mut interval,
            tick_s,
        } = split_world(&url, "refused-by-another", Duration::from_secs(1)).await;
        let nats = async_nats::connect(url.as_str()).await.unwrap();
        let mut handoffs = nats
            .subscribe(format!("mmo.{}.peer.zone.1", relay.world))
            .await
            .unwrap();
        nats.flush().await.unwrap();
        let world = relay.world.clone();
        let refuser = tokio::spawn(async move {
            while let Some(message) = futures_util::StreamExt::next(&mut handoffs).await {
                let Ok(PeerMessage::Handoff(h)) = PeerMessage::decode(&message.payload) else {
                    continue;
                };
                let answer = PeerMessage::Answer(HandoffAnswer {
                    transfer_id: h.transfer_id,
                    zone_process: 0x0000_0000_dead_beef,
                    refused: Some("this zone process is stopping".to_owned()),
                });
                let subject = format!("mmo.{world}.peer.proc.{:016x}", h.from_process);
                nats.publish(subject, answer.encode().unwrap().into())
                    .await
                    .unwrap();
                nats.flush().await.unwrap();
            }
        });

        let mut alice = connect(&gateway, trust, &zone, "a").await;
        until_ready(&mut [&mut alice], &mut interval, tick_s).await;
        let entity = alice.entity().expect("welcomed");
        let east = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        let closed = |alice: &Player| {
            alice.events.iter().find_map(|e| match e {
                ClientEvent::Disconnected { reason, .. } => Some(*reason),
                _ => None,
            })
        };
        for _ in 0..300 {
            interval.tick().await;
            alice.tick(east, tick_s);
            if closed(&alice).is_some() || in_zone(&zones_1, 1, entity).await.flatten().is_some() {
                break;
            }
        }
        // A second more for whatever follows to settle.
        for _ in 0..30 {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick_s);
        }
        let record = the_handoff_record(&redis_url, &relay.world).await;
        let in_1 = in_zone(&zones_1, 1, entity).await.flatten().is_some();
        let in_0 = in_zone(&zones_0, 0, entity).await.flatten().is_some();
        let closed = closed(&alice);
        println!("record {record:?}; in zone 1: {in_1}, in zone 0: {in_0}, closed: {closed:?}");
        if record.starts_with("taken ") {
            assert!(
                in_1 && !in_0 && closed.is_none(),
                "taken: she plays on in zone 1 only"
            );
        } else {
            assert_eq!(record, "aborted");
            assert!(
                !in_1 && !in_0 && closed == Some(DisconnectReason::ServiceUnavailable),
                "aborted: zone 0's process kept and closed her; zone 1 refused her"
            );
        }
        refuser.abort();
        if closed.is_none() {
            alice.client.disconnect(Duration::from_secs(2)).await;
        }
        gateway.shutdown(Duration::from_secs(1)).await;
        zones_0.shutdown(Duration::from_secs(2)).await;
        zones_1.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 60 s");
}

/// A session handed to another zone process keeps its resumption token (the handoff
/// carries it): after Alice crosses from zone 0's process into zone 1's, her token is the
/// one zone 0's process gave, and she resumes with it through a second gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_handed_to_another_process_resumes_with_the_token_it_had() {
    let Some(url) = service_url("MMO_TEST_NATS_URL") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let SplitWorld {
            relay,
            config,
            store: _,
            zones_0,
            zones_1,
            gateway,
            trust,
            zone,
            mut interval,
            tick_s,
        } = split_world(&url, "token-kept", Duration::from_secs(1)).await;
        let gateway_2 = GatewayProcess::start(&config, relay.clone()).await.unwrap();
        let mut alice = connect(&gateway, trust, &zone, "a").await;
        until_ready(&mut [&mut alice], &mut interval, tick_s).await;
        let entity = alice.entity().expect("welcomed");
        let token = alice
            .client
            .session()
            .resume_token()
            .expect("a fleet session has a token")
            .to_vec();
        let east = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
        let mut crossed = false;
        for _ in 0..300 {
            interval.tick().await;
            alice.tick(east, tick_s);
            if in_zone(&zones_1, 1, entity).await.flatten().is_some() {
                crossed = true;
                break;
            }
        }
        assert!(crossed, "she crossed into zone 1's process");
        for _ in 0..30 {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick_s);
        }
        assert_eq!(
            alice.client.session().resume_token(),
            Some(token.as_slice()),
            "the same token after the handoff"
        );
        alice
            .client
            .resume(
                gateway_2.local_addr(),
                "localhost",
                trust,
                &mmo_net::client::ConnectOptions::default(),
            )
            .await
            .expect("dials gateway 2");
        let mut resumed = false;
        for _ in 0..90 {
            interval.tick().await;
            alice.tick(MoveInput::default(), tick_s);
            if alice
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Resumed))
            {
                resumed = true;
                break;
            }
        }
        assert!(
            resumed,
            "zone 1's process answered her old token: {:?}",
            alice.events.last()
        );
        assert!(
            !alice
                .events
                .iter()
                .any(|e| matches!(e, ClientEvent::Disconnected { .. })),
            "not closed"
        );
        assert_eq!(alice.entity(), Some(entity), "the same entity");
        alice.client.disconnect(Duration::from_secs(2)).await;
        gateway.shutdown(Duration::from_secs(1)).await;
        gateway_2.shutdown(Duration::from_secs(1)).await;
        zones_0.shutdown(Duration::from_secs(2)).await;
        zones_1.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 60 s");
}
