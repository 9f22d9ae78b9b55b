"""Write a Hugging Face Space folder (app.py + requirements.txt + card) that serves the demo for a pipeline.

    python scripts/make_space.py --output my-space [--pipeline DIR | --hub_id ORG/NAME] [--package SPEC]

Then `cd my-space && python app.py` runs it locally, or push the folder as a Gradio Space.
"""
import sys

from qiren_gen.demo.space import write_space
from qiren_gen.runtime.errors import one_line
from qiren_gen.runtime.suggestions import SuggestingArgumentParser


def main(argv=None) -> int:
    p = SuggestingArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", required=True, help="new (or empty) folder for the Space")
    p.add_argument("--pipeline", default=None, help="pipeline folder copied into the Space (default: the bundled one)")
    p.add_argument("--hub_id", "--hub-id", default=None,
                   help="or: the Space loads this Hub id instead of carrying a copy")
    p.add_argument("--package", default="qiren-gen[demo]",
                   help="requirements.txt line that installs qiren-gen (default: qiren-gen[demo]; a git URL works)")
    p.add_argument("--title", default="QIREN faces", help="Space title")
    args = p.parse_args(argv)
    try:
        out = write_space(args.output, args.pipeline, args.hub_id, args.package, args.title)
    except (OSError, ValueError) as exc:
        print(f"make_space: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(f"wrote {out}/app.py, requirements.txt, README.md" + ("" if args.hub_id else f" and {out}/pipeline/"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
