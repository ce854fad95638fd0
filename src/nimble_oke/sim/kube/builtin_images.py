"""The images every simulated cluster runs out of the box, by reference (the last match
wins): an inert container for anything unknown, curl through the host's own tools, busybox
commands, the HTTP echo server, pause-like images and NIM. Apart from images.py so that the
host-shell container (which builds on images.py) is registered without a cycle."""

from __future__ import annotations

from .hostshell import CURL_IMAGE_BYTES, HostShellContainer, host_tools_available
from .images import (
    BUSYBOX_IMAGE_BYTES,
    HTTP_ECHO_IMAGE_BYTES,
    NIM_IMAGE_BYTES,
    PAUSE_LIKE_IMAGE_BYTES,
    UNEMULATED,
    CommandContainer,
    HttpEchoContainer,
    ImageRegistry,
    InertContainer,
    PauseContainer,
    nim_image,
    normalize,
)


def builtin_registry() -> ImageRegistry:
    registry = ImageRegistry()
    registry.register(  # first, so every specific image below wins over it
        lambda _image: True,
        InertContainer,
        size_bytes=PAUSE_LIKE_IMAGE_BYTES,
        name=UNEMULATED,
    )
    if host_tools_available():
        registry.register(
            lambda image: normalize(image).startswith("docker.io/curlimages/curl:"),
            HostShellContainer,
            size_bytes=CURL_IMAGE_BYTES,
            name="curl",
        )
    registry.register(
        lambda image: (
            normalize(image).startswith("docker.io/library/busybox")
            or image.startswith("nimble-sim/busybox")
        ),
        CommandContainer,
        size_bytes=BUSYBOX_IMAGE_BYTES,
        name="busybox",
    )
    registry.register(
        lambda image: "nimble-sim/http-echo" in image,
        HttpEchoContainer,
        size_bytes=HTTP_ECHO_IMAGE_BYTES,
        name="http-echo",
    )
    registry.register(
        lambda image: "k8s-device-plugin" in image or "/pause:" in image,
        PauseContainer,
        size_bytes=PAUSE_LIKE_IMAGE_BYTES,
        name="pause",
    )
    registry.register(
        lambda image: image.startswith("nvcr.io/nim/"),
        nim_image,
        size_bytes=NIM_IMAGE_BYTES,
        name="nim",
    )
    return registry
