# The one image of the product: `queue-operator controller|apiserver|worker`. The chart runs it as
# UID 65532 with a read-only root filesystem; migrations and Lua scripts are embedded in the binary.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/queue-operator .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/queue-operator /queue-operator
USER 65532:65532
ENTRYPOINT ["/queue-operator"]
