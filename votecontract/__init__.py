"""The contract between the processes of the pipeline: ingest (the producer), the processor
Job (the consumer), the local ScaledJob runner and the manifests in keda/ and helm/.

Standard library only, and importing nothing of the project: ingest and processor each import
this package and never each other, as python-arq's producer and worker share only its
`constants` and `jobs` modules."""
