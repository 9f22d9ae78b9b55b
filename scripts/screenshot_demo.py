"""Start the demo, open it in headless Chromium, run one Sample (16 faces at 128x128), write docs/figures/demo.png.

    python scripts/screenshot_demo.py [--pipeline DIR_OR_HUB_ID] [--output docs/figures/demo.png]

Needs: apt-get install -y chromium chromium-driver; pip install -e ".[screenshots]" (selenium and Gradio).
"""
import argparse
import importlib.util
import socket
import sys

from qiren_gen.demo import start_demo
from qiren_gen.demo.browser import screenshot_sample
from qiren_gen.runtime.errors import one_line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default=None, help="pipeline folder or Hub id (default: the bundled one)")
    p.add_argument("--output", default="docs/figures/demo.png", help="PNG to write")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=1150)
    args = p.parse_args(argv)
    if importlib.util.find_spec("selenium") is None:  # before the demo starts: one line, not a traceback later
        print('screenshot_demo: error: needs selenium: pip install -e ".[screenshots]" '
              "(and apt-get install -y chromium chromium-driver)", file=sys.stderr)
        return 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        running = start_demo(args.pipeline, port=port)
    except (OSError, ValueError) as exc:
        print(f"screenshot_demo: error: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        seen = screenshot_sample(running.url, args.output, args.width, args.height)
    finally:
        running.close()
    print(f"demo started in {running.startup_s:.1f} s; Sample (defaults) answered in the browser "
          f"{seen['click_to_grid_s']:.1f} s after the click; grid {seen['grid_size'][0]}x{seen['grid_size'][1]}; "
          f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
