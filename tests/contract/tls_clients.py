"""Stock Python clients against a Palaver node serving TLS, trusting only the
test's CA: the standard library's ssl and http.client (HTTP/1.1 by ALPN), and
grpcio (HTTP/2) calling the gRPC health check. Run by the api test `tls`:

    tls_clients.py PORT CA_FILE SERVER_NAME

SERVER_NAME is a name of the certificate; the node is at 127.0.0.1:PORT.
Prints one JSON line: what each client saw.
"""

import http.client
import json
import socket
import ssl
import sys

import grpc

port, ca_file, server_name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen = {}


class NamedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to 127.0.0.1, asking for (and verifying) `server_name`."""

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = self._context.wrap_socket(raw, server_hostname=server_name)


# With a CA file given, the default context trusts that file alone.
context = ssl.create_default_context(cafile=ca_file)
context.set_alpn_protocols(["http/1.1"])
connection = NamedHTTPSConnection(server_name, port, context=context, timeout=10)
connection.request("GET", "/healthz")
response = connection.getresponse()
seen["http"] = {
    "status": response.status,
    "hsts": response.getheader("strict-transport-security"),
    "body": json.loads(response.read()),
    "alpn": connection.sock.selected_alpn_protocol(),
    "tls": connection.sock.version(),
}
connection.close()

# The system's roots do not vouch for the test's CA.
try:
    untrusted = NamedHTTPSConnection(
        server_name, port, context=ssl.create_default_context(), timeout=10
    )
    untrusted.request("GET", "/healthz")
    seen["untrusted"] = "accepted"
except ssl.SSLCertVerificationError as err:
    seen["untrusted"] = err.reason

credentials = grpc.ssl_channel_credentials(root_certificates=open(ca_file, "rb").read())
options = [("grpc.ssl_target_name_override", server_name)]
with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options) as channel:
    # grpc.health.v1.Health/Check with no service name: the request is empty,
    # the answer `status` (field 1, a varint) 1 = SERVING. Bytes in and out,
    # so no generated stubs are needed.
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    answer = check(b"", timeout=10)
    seen["grpc"] = {"health": "SERVING" if answer == b"\x08\x01" else answer.hex()}

print(json.dumps(seen))
