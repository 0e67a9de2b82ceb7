#!/usr/bin/env bash
# Deploy one stage to AWS: the infrastructure stack, then the Chalice app,
# then what Chalice cannot set. Needs the AWS CLI v2 with credentials,
# and `make test`'s virtualenv (chalice).
#   infra/aws/deploy.sh STAGE SENDER_EMAIL
set -euo pipefail
stage=${1:?usage: infra/aws/deploy.sh STAGE SENDER_EMAIL}
sender=${2:?usage: infra/aws/deploy.sh STAGE SENDER_EMAIL}
cd "$(dirname "$0")/../.."
py=.venv/bin/python
make -s wheels  # requirements.txt names the SQLAlchemy wheel by path
stack="zaqar-$stage"
region=$(aws configure get region || echo "${AWS_DEFAULT_REGION:?set a region}")
account=$(aws sts get-caller-identity --query Account --output text)

echo "1/5 infrastructure stack $stack"
aws cloudformation deploy --template-file infra/aws/stack.yaml --stack-name "$stack" \
  --parameter-overrides "Stage=$stage" "SenderEmail=$sender" --capabilities CAPABILITY_IAM
outputs=$(aws cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].Outputs' --output json)
output() { echo "$outputs" | $py -c "import json,sys; print({o['OutputKey']: o['OutputValue'] for o in json.load(sys.stdin)}['$1'])"; }

echo "2/5 catalog URL (password from Secrets Manager)"
password=$(aws secretsmanager get-secret-value --secret-id "$(output CatalogSecretArn)" \
  --query SecretString --output text | $py -c "import json,sys; print(json.load(sys.stdin)['password'])")
# pg8000 with libpq's sslmode: the proxy's certificate is a public ACM one, checked with its host name
catalog="postgresql+pg8000://zaqar:${password}@$(output CatalogProxyEndpoint):5432/zaqar?sslmode=verify-full"
signing_key=$(aws secretsmanager get-random-password --password-length 48 --exclude-punctuation \
  --query RandomPassword --output text)

echo "3/5 chalice deploy --stage $stage"
export EVENT_STREAM RETRY_QUEUE
EVENT_STREAM=$(output EventStreamName)
RETRY_QUEUE=$(output RetryQueueName)
$py -m infra.aws.configure --stage "$stage" --outputs "$outputs" --region "$region" --account "$account" \
  --set "CATALOG_URL=$catalog" --set "SIGNING_KEY=$signing_key" --set "PUBLIC_URL=pending"
.venv/bin/chalice deploy --stage "$stage"

echo "4/5 settings that need the deployed APIs"
ws_api=$($py -c "import json; d=json.load(open('.chalice/deployed/$stage.json')); print(next(r['websocket_api_id'] for r in d['resources'] if r.get('resource_type') == 'websocket_api'))")
rest_url=$(.venv/bin/chalice url --stage "$stage")
$py -m infra.aws.configure --stage "$stage" --outputs "$outputs" --region "$region" --account "$account" \
  --websocket-api-id "$ws_api" --set "CATALOG_URL=$catalog" --set "SIGNING_KEY=$signing_key" \
  --set "PUBLIC_URL=${rest_url%/}"
.venv/bin/chalice deploy --stage "$stage"
for function in deliver retry; do
  uuid=$(aws lambda list-event-source-mappings --function-name "zaqar-serverless-$stage-$function" \
    --query 'EventSourceMappings[0].UUID' --output text)
  aws lambda update-event-source-mapping --uuid "$uuid" --function-response-types ReportBatchItemFailures >/dev/null
done
aws lambda update-event-source-mapping --uuid "$(aws lambda list-event-source-mappings \
  --function-name "zaqar-serverless-$stage-deliver" --query 'EventSourceMappings[0].UUID' --output text)" \
  --bisect-batch-on-function-error --maximum-retry-attempts 10 >/dev/null

rest_api=$($py -c "import json; d=json.load(open('.chalice/deployed/$stage.json')); print(next(r['rest_api_id'] for r in d['resources'] if r.get('resource_type') == 'rest_api'))")
# API Gateway answers unknown routes 403 "Missing Authentication Token": answer 404 in Zaqar's format
aws apigateway put-gateway-response --rest-api-id "$rest_api" --response-type MISSING_AUTHENTICATION_TOKEN \
  --status-code 404 --response-templates '{"application/json": "{\"title\": \"Not found\", \"description\": \"No resource at $context.path.\"}"}' >/dev/null
aws apigateway create-deployment --rest-api-id "$rest_api" --stage-name v1 >/dev/null
aws lambda invoke --function-name "zaqar-serverless-$stage-migrate" /dev/null >/dev/null

echo "5/5 done"
echo "REST:      ${rest_url}"
echo "websocket: wss://${ws_api}.execute-api.${region}.amazonaws.com/v1"
