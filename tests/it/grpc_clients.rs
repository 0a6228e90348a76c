//! Foreign gRPC clients: Python grpcio (grpc-core) on the unix socket, with its default
//! `:authority` and with the ones newer grpc-core (the %-encoded socket path) and grpc-java (the
//! raw path) send; server reflection in both `v1` and `v1alpha`. The script speaks raw protobuf
//! bytes, so it needs no generated code, only Debian's `python3-grpcio` (`cargo xtask test`
//! installs it).

use rvirt_tests::{domain_xml, start_daemon};

/// Debian's interpreter, where `apt-get install python3-grpcio` puts the module (a pyenv or venv
/// `python3` first on PATH would not see it).
const PYTHON: &str = "/usr/bin/python3";

/// Calls, on `sys.argv[1]` with `:authority` `sys.argv[2]` (empty: grpc-core's default): the
/// health check, ListAllDomains (flags 0), and ListServices over both reflection versions. Prints
/// one line per call: its name and the answer's bytes in hex, or ERR and the status.
const SCRIPT: &str = r#"
import grpc, sys
options = [("grpc.default_authority", sys.argv[2])] if sys.argv[2] else []
channel = grpc.insecure_channel(sys.argv[1], options=options)
raw = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
def show(name, call):
    try:
        print(name, call().hex())
    except grpc.RpcError as e:
        print(name, "ERR", e.code(), e.details())
show("health", lambda: channel.unary_unary("/grpc.health.v1.Health/Check", **raw)(b"", timeout=10))
show("list", lambda: channel.unary_unary("/rvirt.v1.DomainService/ListAllDomains", **raw)(b"", timeout=10))
for version in ["v1", "v1alpha"]:
    method = "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version
    # ServerReflectionRequest { list_services: "" } is field 7, length 0.
    call = lambda: next(channel.stream_stream(method, **raw)(iter([b"\x3a\x00"]), timeout=10))
    show("reflection-" + version, call)
"#;

fn run_python(target: &str, authority: &str) -> String {
    let output = std::process::Command::new(PYTHON)
        .args(["-c", SCRIPT, target, authority])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} ({e}): install python3 and python3-grpcio"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the grpcio client failed ({}): {stderr}\nif grpc is missing: apt-get install python3-grpcio \
         (`cargo xtask test` installs it)",
        output.status
    );
    String::from_utf8(output.stdout).expect("hex output")
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

/// `name`'s answer bytes from the script's output; panics on a failed call.
fn answer(output: &str, name: &str) -> Vec<u8> {
    let line = output.lines().find(|line| line.split(' ').next() == Some(name)).expect("a line per call");
    let rest = &line[name.len() + 1..];
    assert!(!rest.starts_with("ERR"), "{name} failed: {rest}");
    decode_hex(rest)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn grpc_core_clients_work_on_the_unix_socket_with_any_authority() {
    let daemon = start_daemon().await;
    daemon.client.define_xml(&domain_xml("py-guest", 1), 0).await.unwrap();
    let path = daemon.uri.strip_prefix("unix://").expect("unix uri").to_owned();
    let encoded: String =
        path.bytes().map(|b| if b == b'/' { "%2F".into() } else { (b as char).to_string() }).collect();
    // grpc-core's own default (localhost before 1.57), what it sends since (the %-encoded path),
    // what grpc-java and older grpc-go send (the raw path).
    for authority in ["", encoded.as_str(), path.as_str()] {
        let output = tokio::task::spawn_blocking({
            let target = format!("unix:{path}");
            let authority = authority.to_owned();
            move || run_python(&target, &authority)
        })
        .await
        .unwrap();
        // HealthCheckResponse { status: SERVING (1) }.
        assert_eq!(answer(&output, "health"), [0x08, 0x01], "authority {authority:?}");
        assert!(contains(&answer(&output, "list"), "py-guest"), "authority {authority:?}: {output}");
        for version in ["reflection-v1", "reflection-v1alpha"] {
            let services = answer(&output, version);
            assert!(contains(&services, "rvirt.v1.DomainService"), "{version}, authority {authority:?}");
            assert!(contains(&services, "grpc.health.v1.Health"), "{version}");
        }
    }
    daemon.stop().await;
}
