"""A review classifier the student writes around their own cell: two scores per review, read at the
last real token whatever the padding."""
from .. import Kind

KIND = Kind(
    name="sentiment_model",
    checks=('forward', 'last_token'),
    verdicts="grader.kinds.sentiment_model.verdicts",
    primary=("forward",),
    worker={"sentiment": "grader.kinds.sentiment_model.probe:sentiment",
            "export_sentiment": "grader.kinds.sentiment_model.export:export_sentiment"},
    verifier={"verify_sentiment": "grader.kinds.sentiment_model.measure:verify"},
    results="grader.kinds.sentiment_model.run",
    run="grader.kinds.sentiment_model.run",
    spec="grader.kinds.sentiment_model.spec",
)
