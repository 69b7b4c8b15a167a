"""What the services module says about the servers it knows, without starting one."""

from livestream.tools.services import JupyterServer


def test_a_path_with_the_token_is_an_address_on_the_server():
    # the notebook's own server: its public address is a path on the browser's
    # host; a browser that Python drives needs the whole address
    url = "http://localhost:8888/user/me"
    own = JupyterServer(None, url, "t", public_url="/user/me")
    assert own.with_token(own.proxy_prefix().format(port=5000) + "/sse") == (
        "http://localhost:8888/user/me/proxy/5000/sse?token=t"
    )
    assert own.for_browser("/user/me/proxy/5000/sse") == "/user/me/proxy/5000/sse"
