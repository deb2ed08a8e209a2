# The Gradescope autograder as a Docker image ("Manual Docker Configuration"), holding
# exactly what `grade build-autograder ASSIGNMENT` puts in the zip, laid out as Gradescope
# unpacks that zip: /autograder/source, then source/setup.sh builds /opt/dlgrade/venv and
# installs /autograder/run_autograder. No solutions, tests or examples go in: see .dockerignore.
#
#   docker build --build-arg ASSIGNMENT=cs1678-hw4 -t dlgrade-cs1678-hw4 .
#   docker run --rm -v "$PWD/sub:/autograder/submission" -v "$PWD/res:/autograder/results" \
#       dlgrade-cs1678-hw4 /autograder/run_autograder
#
# Held-out labels (ece661-hw2, dl-assignment2) and course images are never built into the
# image: mount them where the zip would put them, e.g.
#   -v "$PWD/labels:/autograder/source/labels:ro" -v "$PWD/caltech:/autograder/source/data:ro"
#
# The base image (Ubuntu 22.04) defines CMD and ENTRYPOINT for Gradescope's harness; keep them.
ARG BASE_REPO=gradescope/autograder-base
ARG TAG=latest
FROM ${BASE_REPO}:${TAG}

# The assignment id, the name of a rubric in rubrics/ (see `grade --list`).
ARG ASSIGNMENT=cs1678-hw4

# What the zip holds, file for file (rubrics/ may hold other assignments' rubrics too).
COPY pyproject.toml constraints.txt README.md /autograder/source/
COPY grader/ /autograder/source/grader/
COPY rubrics/ /autograder/source/rubrics/
COPY grader/gradescope_files/setup.sh grader/gradescope_files/run_autograder /autograder/source/

# The marker the entrypoint reads to know which rubric to grade with.
RUN test -f "/autograder/source/rubrics/${ASSIGNMENT}.toml" \
    && printf '%s\n' "${ASSIGNMENT}" > /autograder/source/dlgrade-assignment

# Exactly what Gradescope does with the zip: run source/setup.sh once, as root. It installs
# Python 3.11 and the CPU build of torch into /opt/dlgrade/venv, and copies
# source/run_autograder to /autograder/run_autograder.
RUN chmod +x /autograder/source/setup.sh /autograder/source/run_autograder \
    && bash /autograder/source/setup.sh \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/* /var/tmp/*

# Fail the build, not the first submission, if the result is not what run_autograder expects.
RUN test -x /autograder/run_autograder \
    && cmp /autograder/source/run_autograder /autograder/run_autograder \
    && DLGRADE_RUBRICS=/autograder/source/rubrics /opt/dlgrade/venv/bin/python -c \
       "import sys, grader.gradescope; from grader.rubric import load_rubric; load_rubric(sys.argv[1])" \
       "$(cat /autograder/source/dlgrade-assignment)"
