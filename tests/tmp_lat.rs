use dcnet::protocol::MemberEvent;
use dcnet::sim::{LinkModel, Network, TestGroup};
#[test]
fn trace_latency() {
    let p = dcnet::params::RoundParams {
        slot_bytes: 128,
        ..Default::default()
    };
    let tg = TestGroup::new(10, p, 5).unwrap();
    let mut net = Network::new(
        &tg,
        5,
        LinkModel {
            base_us: 20_000,
            jitter_us: 2000,
            ..LinkModel::default()
        },
    );
    net.start();
    net.run_rounds(5).unwrap();
    let t0 = net.now();
    for i in 0..8 {
        net.members[i]
            .as_mut()
            .unwrap()
            .submit(format!("hello{i}").as_bytes())
            .unwrap();
    }
    let mut seen = vec![0usize; 10];
    for _ in 0..200000 {
        if !net.step() {
            break;
        }
        let now = (net.now().as_micros() - t0.as_micros()) as f64 / 1000.0;
        for i in 0..10 {
            while seen[i] < net.member_events[i].len() {
                let e = &net.member_events[i][seen[i]];
                match e {
                    MemberEvent::Sent { .. }
                    | MemberEvent::Collided { .. }
                    | MemberEvent::HeldBack { .. } => println!("{now:8.1} m{i} {e:?}"),
                    MemberEvent::RoundCompleted { round, .. } if i == 0 => {
                        println!("{now:8.1} round {round} done")
                    }
                    _ => {}
                }
                seen[i] += 1;
            }
        }
        if now > 1500.0 {
            break;
        }
    }
}
